// What a Postgres server's background processes would do for the embedded PGlite: checkpoints and the WAL writer.
import type { Sql } from "../broker/db.ts";
import { Checkpoints } from "./checkpoints.ts";
import { WalWriter } from "./wal-writer.ts";

export interface PGliteUpkeep {
  stop(): Promise<void>;
}

/**
 * PGlite is Postgres in single-user mode: no checkpointer (its WAL would grow until it closes, checkpoints.ts) and
 * no walwriter (commits that do not wait for the disk would stay in its memory, wal-writer.ts). Whoever opens the
 * pool on it (a node, or `npm run broker` on its own) starts both here, and stops them before the pool closes.
 */
export function startPGliteUpkeep(sql: Sql, log: (message: string) => void): PGliteUpkeep {
  const checkpoints = new Checkpoints(sql, { log });
  const walWriter = new WalWriter(sql, { log });
  checkpoints.start();
  walWriter.start();
  return {
    async stop() {
      await checkpoints.stop();
      await walWriter.stop();
    },
  };
}
