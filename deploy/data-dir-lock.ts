// One process per data dir: an OS lock on `<dataDir>/<part>.lock`, held while the embedded state is open.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SqlDatabase } from "../actors/hosts/local/sql.ts";
import { EdgewiseError } from "../shared/errors/index.ts";
import { createPrivateFile } from "./data-dir-files.ts";

/**
 * What a lock guards. `pglite`: the embedded Postgres's files, which two Postgres instances would write over each
 * other. `actors`: the local actor host's SQLite, where two hosts would each run the same actor (two turns at once,
 * state written over, messages applied twice).
 */
export type DataDirPart = "pglite" | "actors";

const guards: Record<DataDirPart, string> = {
  pglite: "its embedded Postgres (pglite/)",
  actors: "its actors (actors.db)",
};

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/**
 * Why SQLite: it is the one file lock all three runtimes reach without a native addon (bun:sqlite, node:sqlite).
 * A connection in EXCLUSIVE locking mode keeps its write lock (a POSIX record lock) until it closes, and the kernel
 * drops it when the process dies, however it dies, so a crash never leaves a stale lock behind (a pid file would,
 * and a reused pid would keep it). Who holds it is written beside it, for the message a refused start prints.
 */
export function lockDataDir(
  dataDir: string,
  part: DataDirPart,
  openDb: (path: string) => SqlDatabase,
  /** What the refusal tells the user to do; a node's own start by default. */
  remedy = "Stop it, or give this one its own EDGEWISE_DATA_DIR",
): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, `${part}.lock`);
  const holderFile = `${path}.pid`;
  let db: SqlDatabase | undefined;
  try {
    // 0600 before SQLite makes it 0644 (its journal takes the file's mode): data-dir-files.ts.
    createPrivateFile(path);
    db = openDb(path);
    db.exec(
      "PRAGMA busy_timeout = 0; PRAGMA journal_mode = DELETE; PRAGMA locking_mode = EXCLUSIVE; " +
        "BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS lock_holder (pid INTEGER); DELETE FROM lock_holder; " +
        `INSERT INTO lock_holder VALUES (${process.pid}); COMMIT;`,
    );
  } catch (error) {
    try {
      db?.close();
    } catch {
      // The refusal below is what matters.
    }
    if (!/locked|busy/i.test(String((error as Error)?.message ?? error))) throw error;
    throw new EdgewiseError(
      "config.invalid",
      `data dir ${dataDir} is in use: another process${holderOf(holderFile)} holds ${guards[part]}. ${remedy}`,
    );
  }
  if (part === "actors") {
    try {
      refuseUnlockedHolder(dataDir, openDb);
    } catch (error) {
      db.close();
      throw error;
    }
  }
  writeFileSync(holderFile, `${process.pid} ${new Date().toISOString()}\n`, { mode: 0o600 });
  const held = db;
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      held.close();
    },
  };
}

function holderOf(holderFile: string): string {
  try {
    const [pid, since] = readFileSync(holderFile, "utf8").trim().split(" ");
    return pid ? ` (pid ${pid}${since ? `, since ${since}` : ""})` : "";
  } catch {
    return "";
  }
}

/**
 * A node of a version from before this lock (2026-12-06) takes no lock, so the one above cannot see it: a newer
 * version started while it still runs, as in an upgrade that does not wait for the old node to exit, would open the
 * same PGlite files (two Postgres instances writing over each other: two diverging ledgers, then a data dir that no
 * longer opens) and run the same actors. Such a node keeps actors.db open in WAL mode while it runs, which holds a
 * shared lock on the file; leaving WAL mode needs every other connection gone, so with no wait it fails at once
 * while one is open anywhere. When it succeeds the file is only checkpointed (the actor host turns WAL back on).
 */
function refuseUnlockedHolder(dataDir: string, openDb: (path: string) => SqlDatabase): void {
  if (!openElsewhere(join(dataDir, "actors.db"), openDb)) return;
  throw new EdgewiseError(
    "config.invalid",
    `data dir ${dataDir} is in use: another process has its actors (actors.db) open without holding the data ` +
      "dir's lock, as a node of a version from before 2026-12-06 does. Stop it and wait for it to exit, then start " +
      "this one",
  );
}

/**
 * Whether another process has the SQLite file at `path` open (see refuseUnlockedHolder for how it tells). When no
 * one has, the file's WAL is checkpointed into it on the way (its owner turns WAL back on).
 */
export function openElsewhere(path: string, openDb: (path: string) => SqlDatabase): boolean {
  if (!existsSync(path)) return false;
  const db = openDb(path);
  try {
    db.exec("PRAGMA busy_timeout = 0; PRAGMA journal_mode = DELETE;");
    return false;
  } catch (error) {
    if (!/locked|busy/i.test(String((error as Error)?.message ?? error))) throw error;
    return true;
  } finally {
    db.close();
  }
}
