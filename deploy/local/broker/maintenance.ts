// Upkeep for the embedded PGlite: VACUUM (ANALYZE) of its tables, the broker's and the node's, which nothing else runs.
import type { MaintenanceOptions } from "./config.ts";
import { type Sql, tableActivity, vacuum } from "./db.ts";
import { PeriodicJob } from "../../periodic-job.ts";

/**
 * Every `vacuumEveryMs` if anything was written meanwhile, and sooner after `vacuumEveryOutcomes` outcomes (a
 * busy broker right after start, whose plans were made on empty tables), looks at the statistics collector's
 * counts and, like autovacuum but with tighter thresholds, vacuums each table of the schema with dead rows
 * beyond 50 + 5% of its live rows and analyzes each with changes beyond 50 + 10%: the broker's, and on a node's
 * PGlite the application's (billing's outbox and accounts, the read model leave a dead row per order). The queue
 * table gets both on every run under load; the event log and the dedup ids, which only lose rows to the
 * housekeeping sweep, and append-only tables get them far less often (ANALYZE of a large event log samples
 * 30,000 rows: 0.1-0.2 s on PGlite). One table per statement, so that PGlite's single connection serves other
 * statements in between; never two runs at once.
 */
export class Maintenance {
  private readonly job: PeriodicJob;
  private writes = 0;
  private outcomes = 0;
  /** Runs so far, and how long each table took in the last one (ms). */
  runs = 0;
  lastMs: Record<string, number> = {};

  constructor(
    private readonly sql: Sql,
    private readonly options: Required<MaintenanceOptions>,
    private readonly log: (message: string) => void,
  ) {
    this.job = new PeriodicJob(async (stopped) => {
      // Every outcome leaves a dead row in the queue table; the collector's counts can lag by a second or so.
      // Read and reset before the first await, so writes counted during the run start the next one.
      const churned = this.outcomes > 50;
      this.writes = 0;
      this.outcomes = 0;
      const took: Record<string, number> = {};
      try {
        for (const t of await tableActivity(this.sql)) {
          const queue = churned && t.table === "qstash_messages";
          const work = {
            vacuum: queue || t.deadRows > 50 + 0.05 * t.liveRows,
            analyze: queue || t.changedSinceAnalyze > 50 + 0.1 * t.liveRows,
          };
          if (stopped() || (!work.vacuum && !work.analyze)) continue;
          const start = performance.now();
          await vacuum(this.sql, t.table, work);
          took[t.table] = Math.round((performance.now() - start) * 10) / 10;
        }
      } catch (error) {
        if (!stopped()) this.log(`vacuum: ${error instanceof Error ? error.message : String(error)}`);
      }
      this.runs++;
      this.lastMs = took;
    });
  }

  /**
   * Runs every `vacuumEveryMs` once something was written (the broker says so through `wrote` and `recorded`); with
   * `always`, on every tick, for a PGlite whose writers do not report (a node whose queue is elsewhere).
   */
  start(options: { always?: boolean } = {}): void {
    this.job.every(this.options.vacuumEveryMs, options.always ? undefined : () => this.writes > 0);
  }

  /** Messages stored. */
  wrote(count: number): void {
    this.writes += count;
  }

  /** Outcomes recorded: enough of them start a run now. */
  recorded(count: number): void {
    this.writes += count;
    this.outcomes += count;
    if (this.outcomes >= this.options.vacuumEveryOutcomes) void this.run();
  }

  run(): Promise<void> {
    return this.job.run();
  }

  stop(): Promise<void> {
    return this.job.stop();
  }
}
