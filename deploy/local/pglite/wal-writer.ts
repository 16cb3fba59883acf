// The embedded PGlite's WAL writer: commits made without waiting for the disk reach it within a fifth of a second.
import type { Sql } from "../broker/db.ts";
import { PeriodicJob } from "../../periodic-job.ts";

/**
 * Why this exists: the broker commits a claim and a delivered message's removal with `synchronous_commit = off`
 * (`relaxedCommit`): a crash may lose one, and the message is then delivered again. On a Postgres server the WAL
 * writer flushes such commits within `wal_writer_delay` (200 ms). PGlite is Postgres in single-user mode and runs no
 * WAL writer, so their WAL stayed in its memory until the next commit that waits: after a quiet spell, a SIGKILL lost
 * every removal since the last publish, and all those messages were delivered again, however long ago they arrived.
 *
 * Every `everyMs` (200 by default), when WAL was inserted past what is flushed, this commits a transaction that
 * writes one small WAL record (a transactional logical message, which any `wal_level` takes); its commit waits for the
 * disk, and the WAL before it goes with it, in order. (A transaction that only takes an id writes no WAL of its own,
 * and Postgres then commits it without waiting.)
 */
export class WalWriter {
  private readonly job: PeriodicJob;
  /** Flushes made so far (each one commit): what tests check. */
  flushes = 0;

  constructor(
    private readonly sql: Sql,
    private readonly options: { everyMs?: number; log?: (message: string) => void } = {},
  ) {
    this.job = new PeriodicJob(async (stopped) => {
      try {
        const [row] = await this.sql<{ flushed: boolean }[]>`
          SELECT CASE WHEN pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn()
            THEN pg_logical_emit_message(true, 'edgewise.wal-writer', '') IS NOT NULL ELSE false END AS flushed`;
        if (row?.flushed) this.flushes++;
      } catch (error) {
        if (!stopped())
          this.options.log?.(`wal writer: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
  }

  start(): void {
    this.job.every(this.options.everyMs ?? 200);
  }

  /** Flushes now if anything waits. (A clean stop needs none: PGlite's close makes a shutdown checkpoint.) */
  flush(): Promise<void> {
    return this.job.run();
  }

  stop(): Promise<void> {
    return this.job.stop();
  }
}
