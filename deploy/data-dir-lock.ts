// One process per data dir: an OS lock on `<dataDir>/<part>.lock`, held while the embedded state is open.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SqlDatabase } from "../actors/hosts/local/sql.ts";
import { EdgewiseError } from "../shared/errors/index.ts";

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
): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, `${part}.lock`);
  const holderFile = `${path}.pid`;
  let db: SqlDatabase | undefined;
  try {
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
      `data dir ${dataDir} is in use: another process${holderOf(holderFile)} holds ${guards[part]}. ` +
        "Stop it, or give this one its own EDGEWISE_DATA_DIR",
    );
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
