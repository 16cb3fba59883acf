// The data dir's files, private to the node's user: files 0600 and directories 0700, made so and kept so.
//
// It holds customer data (the actors' SQLite, PGlite's tables, the ledger among them), traces and secrets; an
// operator's data dir may be open to others (0755, made by hand), so the files themselves must not be.
// Why explicit modes rather than a process umask: startNode also runs inside other programs (test runners, an app
// that embeds it), whose other files a umask would change too; and a umask would not reach PGlite, whose
// WebAssembly file system sets modes itself (its data directory template lands 0666, later files with its own
// umask 022). So: a SQLite file is made 0600 before SQLite opens it (SQLite gives its -wal, -shm and -journal files
// the database file's mode), small files are written with mode 0600, and PGlite's tree is tightened after it opens
// and after it closes.
import { chmodSync, closeSync, lstatSync, openSync, readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";

/** Creates `path` empty with mode 0600 if it does not exist; an existing file is left as it is. */
export function createPrivateFile(path: string): void {
  closeSync(openSync(path, "a", 0o600));
}

export interface Tightened {
  /** Paths whose group or other permission bits were removed. */
  changed: string[];
  /** Paths that could not be changed (owned by another user, say), with why. */
  failed: string[];
}

const open = 0o077;

/**
 * A file removed while the tree is walked: nothing is left to tighten. A node and `npm run broker` walk the data dir
 * only once they hold its locks, but a process that takes none (a node of a version from before the lock, which the
 * broker's PGlite lock cannot see) may still drop a file between the listing and the lstat: that must not stop the
 * start.
 */
const gone = (error: unknown) => (error as { code?: string } | null)?.code === "ENOENT";

function tighten(path: string, into: Tightened): boolean {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if (gone(error)) return false;
    throw error;
  }
  // A symlink's mode means nothing, and chmod would follow it out of the data dir.
  if (stat.isSymbolicLink()) return false;
  if ((stat.mode & open) !== 0) {
    try {
      chmodSync(path, stat.mode & 0o700);
      into.changed.push(path);
    } catch (error) {
      if (!gone(error)) into.failed.push(`${path}: ${(error as { code?: string }).code ?? String(error)}`);
    }
  }
  return stat.isDirectory();
}

/** Removes group and other permissions from `dir` and everything under it; symlinks are not followed. */
export function tightenTree(dir: string, into: Tightened = { changed: [], failed: [] }): Tightened {
  if (!tighten(dir, into)) return into;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if (gone(error)) return into;
    throw error;
  }
  for (const name of names) tightenTree(join(dir, name), into);
  return into;
}

/** The data dir's subdirectories the node makes; any other one there is someone else's (`npm run certs`'s). */
const nodeDirectories = new Set(["pglite"]);

/**
 * The node's own files in the data dir made private: every file directly in it, and the trees the node makes
 * (`pglite/`). The data dir's own mode is the operator's choice (privateDataDir warns about it); other
 * subdirectories are left alone (`npm run certs` writes its certificates, meant to be shared, to `certs/`).
 */
export function tightenDataDir(dataDir: string): Tightened {
  const into: Tightened = { changed: [], failed: [] };
  for (const entry of readdirSync(dataDir, { withFileTypes: true })) {
    const path = join(dataDir, entry.name);
    if (entry.isDirectory()) {
      if (nodeDirectories.has(entry.name)) tightenTree(path, into);
    } else {
      tighten(path, into);
    }
  }
  return into;
}

/** Tightened paths for a log line: each file directly in the data dir by name, a tree as `pglite/ (N)`. */
export function describeTightened(dataDir: string, paths: string[]): string[] {
  const counts = new Map<string, number>();
  for (const path of paths) {
    const [top = "", ...below] = relative(dataDir, path).split(sep);
    const key = below.length > 0 || nodeDirectories.has(top) ? `${top}/` : top;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => (key.endsWith("/") ? `${key} (${count})` : key));
}

/**
 * What a start says about `tightenDataDir`'s result, the node's and the broker's alike: what was made private, and
 * what could not be. Nothing when nothing was open.
 */
export function reportTightened(
  dataDir: string,
  tightened: Tightened,
  warn: (message: string, paths: string[]) => void,
): void {
  if (tightened.changed.length > 0) {
    warn(
      `data dir ${dataDir}: ${tightened.changed.length} files and directories could be read by other users; made them 0600 (directories 0700)`,
      describeTightened(dataDir, tightened.changed),
    );
  }
  if (tightened.failed.length > 0) {
    warn(
      `data dir ${dataDir}: some files could not be made private (0600); chmod them by hand`,
      tightened.failed.slice(0, 20),
    );
  }
}
