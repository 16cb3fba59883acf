// The backup's gzipped tar, written and read by node-tar: a reader of untrusted archives is not code to hand-write.
import { closeSync, createWriteStream, fsyncSync, openSync, readSync, statfsSync } from "node:fs";
import { Header, Pack, ReadEntry, UnpackSync } from "tar";
import { ArchiveError, safePath } from "./manifest.ts";

/**
 * Writes `paths` (relative to `dir`, directories before their contents) and then `last` as a gzipped tar at `path`,
 * created 0600 and never over an existing file. Portable headers: no owner, user or group names, nor timestamps
 * but the files' mtimes. Any warning (a file that shrank while read) fails it.
 */
export async function writeArchive(
  dir: string,
  paths: string[],
  last: { name: string; body: Buffer },
  path: string,
): Promise<void> {
  const pack = new Pack({ cwd: dir, gzip: { level: 6 }, portable: true, strict: true, noDirRecurse: true });
  const file = createWriteStream(path, { flags: "wx", mode: 0o600 });
  const written = new Promise<void>((resolve, reject) => {
    const fail = (error: unknown) => {
      file.destroy();
      reject(error);
    };
    pack.on("error", fail);
    file.on("error", fail);
    file.on("close", resolve);
  });
  pack.pipe(file);
  for (const entry of paths) pack.add(entry);
  // Not a file on disk: the manifest is made here, so it goes in as an entry of its own.
  const manifest = new ReadEntry(
    new Header({ path: last.name, type: "File", size: last.body.length, mode: 0o600, mtime: new Date() }),
  );
  pack.add(manifest);
  manifest.end(last.body);
  pack.end();
  await written;
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Extracts a gzipped tar into the existing directory `into`. node-tar refuses absolute paths, `..` and writing
 * through a symlink; strict, any of its warnings (a bad header, a truncated or corrupt gzip) is an error. What a
 * backup never holds fails the whole extraction rather than being skipped: an entry that is not a file or a
 * directory, a path our stricter safePath refuses, a path named twice. So do files that would leave less than
 * `reserveBytes` free on `into`'s file system (an ENOSPC, before they are written). Synchronous, so once it returns
 * or throws nothing is still being written into `into`.
 */
export function extractArchive(archive: string, into: string, reserveBytes = 0): void {
  let failure: unknown;
  const seen = new Set<string>();
  const refuse = (why: string) => {
    failure ??= new ArchiveError(`it holds ${why}`);
    return false;
  };
  // Each entry's size is in its header, read before any of its bytes are written: an archive whose files come to more
  // than the file system can spare (a few KB of gzip can declare and hold gigabytes of zeros) is refused there,
  // rather than filling the disk other processes write to until the extraction fails.
  const { bavail, bsize, blocks } = statfsSync(into);
  // A file system that reports no size at all (some FUSE mounts) is not judged.
  const room = blocks > 0 ? bavail * bsize - reserveBytes : Number.POSITIVE_INFINITY;
  let declared = 0;
  const unpack = new UnpackSync({
    cwd: into,
    strict: true,
    // As root, node-tar would give files the archive's owners by default.
    preserveOwner: false,
    filter: (path, entry) => {
      const { type } = entry as ReadEntry;
      const name = path.replace(/\/$/, "");
      if (type !== "File" && type !== "Directory") return refuse(`an entry of type ${type} (${path})`);
      if (!safePath(name)) return refuse(`an unsafe path (${path})`);
      if (seen.has(name)) return refuse(`${name} twice`);
      seen.add(name);
      declared += Math.ceil((entry as ReadEntry).size / bsize) * bsize;
      if (declared > room) {
        failure ??= Object.assign(
          new Error(
            `the archive's files need more room than the target's file system can spare (${Math.floor((bavail * bsize) / mebibyte)} MiB free${reserveBytes > 0 ? `; a restore leaves ${reserveBytes / mebibyte} MiB free for the node` : ""}); nothing of it was kept`,
          ),
          // What the file system would have said once full: said before a byte of it is written.
          { code: "ENOSPC" },
        );
        return false;
      }
      return true;
    },
  });
  unpack.on("error", (error: unknown) => {
    failure ??= asArchiveError(error);
  });
  const fd = openSync(archive, "r");
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (let read = readSync(fd, buffer); read > 0 && !failure; read = readSync(fd, buffer)) {
      unpack.write(Buffer.from(buffer.subarray(0, read)));
    }
  } finally {
    closeSync(fd);
  }
  // Ending is when zlib finds a gzip stream cut short, and node-tar an entry cut short.
  if (!failure) unpack.end();
  if (failure) throw failure;
}

const mebibyte = 1_048_576;

/**
 * node-tar's and zlib's refusals, and a tree that does not form (a file where a directory should be), are the
 * archive's fault; anything else (a full disk, a permission) is the machine's, and is not called a bad archive.
 */
function asArchiveError(error: unknown): unknown {
  const code = String((error as { code?: unknown } | null)?.code ?? "");
  const message = String((error as Error | null)?.message ?? error);
  if (code.startsWith("Z_")) return new ArchiveError(`it is not a whole gzip stream (${message})`);
  if (code.startsWith("TAR_")) return new ArchiveError(`it is not a valid tar (${message})`);
  if (code === "EEXIST" || code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") {
    return new ArchiveError(`its entries do not form a tree (${code})`);
  }
  return error;
}

/** Makes a rename in `dir` durable. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
