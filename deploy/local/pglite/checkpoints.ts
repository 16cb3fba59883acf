// Checkpoints for the embedded PGlite, which makes none of its own: without them its WAL grows until it closes.
import type { Sql } from "../broker/db.ts";
import { PeriodicJob } from "../../periodic-job.ts";

export interface CheckpointOptions {
  /** How often the WAL written since the last checkpoint is looked at. Default 10 s. */
  everyMs?: number;
  /** A checkpoint once this much WAL was written since the last one. Default 64 MiB (four segments). */
  walBytes?: number;
  log?: (message: string) => void;
}

/**
 * PGlite is Postgres in single-user mode: no checkpointer process, and it never asks for a checkpoint by WAL volume
 * (max_wal_size) or by time (checkpoint_timeout) either; it makes one when it opens and when it closes. So every
 * WAL segment stays in `pglite/pg_wal` for as long as the node runs: 2.5 GB an hour at 15 orders/s (bench/soak),
 * and all of it replayed at the next start after a crash. This runs `CHECKPOINT` on the node's pool (between
 * transactions, like any statement) once `walBytes` were written since the last one; Postgres then recycles the
 * segments before it (min_wal_size keeps five), so pg_wal stays near 80-150 MB. A checkpoint writes the pages
 * dirtied since the last one on PGlite's thread: tens of ms at this volume.
 */
export class Checkpoints {
  private readonly job: PeriodicJob;
  private readonly walBytes: number;
  /** Checkpoints made so far, and how long the last one took (ms). */
  made = 0;
  lastMs = 0;

  constructor(
    private readonly sql: Sql,
    private readonly options: CheckpointOptions = {},
  ) {
    this.walBytes = options.walBytes ?? 64 * 1024 * 1024;
    this.job = new PeriodicJob(async (stopped) => {
      try {
        if ((await this.walSinceCheckpoint()) < this.walBytes || stopped()) return;
        const start = performance.now();
        await this.sql`CHECKPOINT`;
        this.lastMs = Math.round(performance.now() - start);
        this.made++;
      } catch (error) {
        if (!stopped())
          this.options.log?.(`checkpoint: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
  }

  start(): void {
    this.job.every(this.options.everyMs ?? 10_000);
  }

  /** WAL bytes written since the last checkpoint's redo point. */
  async walSinceCheckpoint(): Promise<number> {
    const [row] = await this.sql<{ bytes: number }[]>`
      SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn)::float8 AS bytes FROM pg_control_checkpoint()`;
    return row?.bytes ?? 0;
  }

  /** Checkpoints if enough WAL was written since the last one; never two at once. */
  check(): Promise<void> {
    return this.job.run();
  }

  stop(): Promise<void> {
    return this.job.stop();
  }
}
