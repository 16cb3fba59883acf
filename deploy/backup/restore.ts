// `npm run restore`: an archive of `npm run backup` checked whole, then moved into an empty data dir, or nothing is.
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { basename, join, resolve } from "node:path";
import type { SqlDatabase } from "../../actors/hosts/local/sql.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { type DataDirLock, lockDataDir } from "../data-dir-lock.ts";
import { markRestored } from "../read-cache-restored.ts";
import { extractArchive, syncDir } from "./archive.ts";
import { readClaimNote } from "./claim.ts";
import {
  ArchiveError,
  digestFile,
  type Manifest,
  type ManifestEntry,
  manifestName,
  parseManifest,
} from "./manifest.ts";

/** What a restore leaves free on the target's file system, for the node that starts on it to write. */
const restoreReserveBytes = 64 * 1_048_576;

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
  const claim = statSync(archive).isFile() ? readClaimNote(archive) : undefined;
  if (claim !== undefined) throw new EdgewiseError("config.invalid", `${archive}: ${claim}`);
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
    for (const part of ["pglite", "actors"] as const)
      locks.push(lockDataDir(dataDir, part, options.openDb, "Restore into another, empty dir"));
  } catch (error) {
    // A process that took the target since it was found empty owns what is in it now: nothing is removed.
    for (const lock of locks) lock.release();
    throw error;
  }
  try {
    mkdirSync(staging, { mode: 0o700 });
    extractArchive(archive, staging, restoreReserveBytes);
    const manifest = verify(staging);
    for (const name of readdirSync(staging)) renameSync(join(staging, name), join(dataDir, name));
    rmSync(staging, { recursive: true });
    // Redis's read cache is newer than this dir: the node's first start clears it (read-cache-restored.ts).
    markRestored(dataDir, manifest.createdAt);
    syncDir(dataDir);
    return manifest;
  } catch (error) {
    // Emptied while the locks are held, their own files last (unlinked, still locked): a node that starts on the
    // target once they are released makes new ones, and nothing of it is removed here.
    const own = new Set(locks.flatMap((lock) => [basename(lock.path), `${basename(lock.path)}.pid`]));
    for (const name of readdirSync(dataDir)) {
      if (!own.has(name)) rmSync(join(dataDir, name), { recursive: true, force: true });
    }
    for (const name of own) rmSync(join(dataDir, name), { force: true });
    for (const lock of locks.splice(0).reverse()) lock.release();
    if (created) {
      try {
        rmdirSync(dataDir); // only if still empty
      } catch {
        // Someone else's now.
      }
    }
    throw error;
  } finally {
    for (const lock of locks.reverse()) lock.release();
  }
}

/**
 * Reads the manifest out of `into`, then checks every entry extracted there against it, from what is on disk (not
 * what the archive claimed), setting the modes a node makes and flushing each file and directory.
 */
export function verify(into: string): Manifest {
  const path = join(into, manifestName);
  if (!existsSync(path) || !lstatSync(path).isFile())
    throw new ArchiveError("it has no manifest (truncated?)");
  const manifest = parseManifest(readFileSync(path));
  rmSync(path);
  const found = new Map<string, ManifestEntry>();
  const visit = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir)) {
      const relative = prefix ? `${prefix}/${name}` : name;
      const full = join(dir, name);
      const stat = lstatSync(full);
      if (stat.isDirectory()) {
        chmodSync(full, 0o700);
        found.set(relative, { path: relative, type: "dir" });
        visit(full, relative);
        // Its entries (the names of the files in it) are on disk too, not only their contents: the final syncDir
        // covers the target's own entries, and a rename moves a directory without flushing what is in it.
        syncDir(full);
      } else if (stat.isFile()) {
        chmodSync(full, 0o600);
        found.set(relative, { path: relative, type: "file", ...digestFile(full, true) });
      } else {
        throw new ArchiveError(`${relative} extracted as neither a file nor a directory`);
      }
    }
  };
  visit(into, "");
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
