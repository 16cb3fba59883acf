// `npm run restore`: an archive of `npm run backup` checked whole, then moved into an empty data dir, or nothing is.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  createReadStream,
  existsSync,
  fsyncSync,
  statSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { createGunzip } from "node:zlib";
import type { SqlDatabase } from "../../actors/hosts/local/sql.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { type DataDirLock, lockDataDir } from "../data-dir-lock.ts";
import { syncDir } from "./backup.ts";
import { type Manifest, type ManifestEntry, manifestName, parseManifest, safePath } from "./manifest.ts";
import { ArchiveError, ByteReader, blockSize, decodeHeader, readContent } from "./tar.ts";

export interface RestoreOptions {
  archive: string;
  /** Must be missing or empty. */
  dataDir: string;
  openDb: (path: string) => SqlDatabase;
}

/**
 * Extracts into a staging directory inside the target (the same file system, so the final moves are renames, and a
 * target that is a mount point works), checks every entry against the manifest, and only then moves the entries
 * into place. On any failure the staging directory, the lock files and a target it created are removed: the
 * target is as it was. Files are 0600 and directories 0700, as a node makes them (data-dir-files.ts).
 */
export async function restore(options: RestoreOptions): Promise<Manifest> {
  const archive = resolve(options.archive);
  const dataDir = resolve(options.dataDir);
  if (!existsSync(archive)) throw new EdgewiseError("config.invalid", `${archive} does not exist`);
  const created = !existsSync(dataDir);
  if (!created) {
    if (!statSync(dataDir).isDirectory())
      throw new EdgewiseError("conflict", `${dataDir} is not a directory`);
    const present = readdirSync(dataDir);
    if (present.length > 0) {
      throw new EdgewiseError(
        "conflict",
        `data dir ${dataDir} is not empty (${present.length} entries, e.g. ${present[0]}); restore only into an empty or new one`,
      );
    }
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const staging = join(dataDir, `.restoring-${randomBytes(4).toString("hex")}`);
  const locks: DataDirLock[] = [];
  try {
    // A node started on the target meanwhile is refused; the lock files stay, as a node would make them.
    for (const part of ["pglite", "actors"] as const) locks.push(lockDataDir(dataDir, part, options.openDb));
  } catch (error) {
    // A process that took the target since it was found empty owns what is in it now: nothing is removed.
    for (const lock of locks) lock.release();
    throw error;
  }
  try {
    mkdirSync(staging, { mode: 0o700 });
    const manifest = await extract(archive, staging);
    for (const name of readdirSync(staging)) renameSync(join(staging, name), join(dataDir, name));
    rmSync(staging, { recursive: true });
    syncDir(dataDir);
    return manifest;
  } catch (error) {
    for (const lock of locks.splice(0).reverse()) lock.release();
    if (created) rmSync(dataDir, { recursive: true, force: true });
    else
      for (const name of readdirSync(dataDir)) rmSync(join(dataDir, name), { recursive: true, force: true });
    throw error;
  } finally {
    for (const lock of locks.reverse()) lock.release();
  }
}

/** Streams the archive into `into`, then checks what it found against the manifest (its last entry). */
async function extract(archive: string, into: string): Promise<Manifest> {
  const gunzip = createReadStream(archive).pipe(createGunzip());
  const reader = new ByteReader(gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  const found = new Map<string, ManifestEntry>();
  let manifest: Manifest | undefined;
  try {
    for (;;) {
      const header = decodeHeader(await reader.exactly(blockSize));
      if (!header) break;
      if (manifest) throw new ArchiveError("it has entries after its manifest");
      if (!safePath(header.path)) throw new ArchiveError(`it names an unsafe path (${header.path})`);
      if (found.has(header.path)) throw new ArchiveError(`it holds ${header.path} twice`);
      const path = join(into, header.path);
      if (header.type === "dir") {
        mkdirSync(path, { mode: 0o700 });
        found.set(header.path, { path: header.path, type: "dir" });
        continue;
      }
      if (header.path === manifestName) {
        const parts: Buffer[] = [];
        await readContent(reader, header.size, (chunk) => parts.push(Buffer.from(chunk)));
        manifest = parseManifest(Buffer.concat(parts));
        continue;
      }
      // `wx`: a path the archive names twice, or under a directory it never made, fails here.
      const fd = openSync(path, "wx", 0o600);
      try {
        const sha256 = await readContent(reader, header.size, (chunk) => writeSync(fd, chunk));
        fsyncSync(fd);
        found.set(header.path, { path: header.path, type: "file", size: header.size, sha256 });
      } finally {
        closeSync(fd);
      }
    }
    if (!(await reader.onlyZerosLeft())) throw new ArchiveError("it has data after its end");
  } catch (error) {
    throw asArchiveError(error);
  }
  if (!manifest) throw new ArchiveError("it has no manifest (truncated?)");
  compare(manifest, found);
  return manifest;
}

/** Every entry the manifest lists, exactly as listed, and nothing else. */
function compare(manifest: Manifest, found: Map<string, ManifestEntry>): void {
  const listed = new Set<string>();
  for (const entry of manifest.entries) {
    listed.add(entry.path);
    const actual = found.get(entry.path);
    if (!actual) throw new ArchiveError(`${entry.path} is in its manifest but not in the archive`);
    if (actual.type !== entry.type) throw new ArchiveError(`${entry.path} is not a ${entry.type}`);
    if (entry.type === "file" && actual.type === "file") {
      if (actual.size !== entry.size || actual.sha256 !== entry.sha256) {
        throw new ArchiveError(`${entry.path} does not match its checksum (corrupt or edited)`);
      }
    }
  }
  const extra = [...found.keys()].find((path) => !listed.has(path));
  if (extra) throw new ArchiveError(`${extra} is in the archive but not in its manifest`);
}

/** zlib's failures (a bad CRC, an early end) and a short read are the archive's fault, as is a path it misnames. */
function asArchiveError(error: unknown): unknown {
  if (error instanceof ArchiveError) return error;
  const code = (error as { code?: string } | null)?.code ?? "";
  if (code.startsWith("Z_") || code === "ERR_ZLIB") {
    return new ArchiveError(`it is not a whole gzip stream (${(error as Error).message})`);
  }
  if (code === "EEXIST" || code === "ENOENT") {
    return new ArchiveError(`its entries do not form a tree (${code})`);
  }
  return error;
}
