// Upkeep for the embedded PGlite: VACUUM (ANALYZE) of its tables, the broker's and the node's, which nothing else runs.
import type { MaintenanceOptions } from "./config.ts";
import { type Sql, tableActivity, vacuum } from "./db.ts";

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
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private writes = 0;
  private outcomes = 0;
  private stopped = false;
  /** Runs so far, and how long each table took in the last one (ms). */
  runs = 0;
  lastMs: Record<string, number> = {};

  constructor(
    private readonly sql: Sql,
    private readonly options: Required<MaintenanceOptions>,
    private readonly log: (message: string) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.writes > 0) void this.run();
    }, this.options.vacuumEveryMs);
    (this.timer as { unref?: () => void }).unref?.();
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
    if (this.stopped) return Promise.resolve();
    if (this.running) return this.running;
    // Every outcome leaves a dead row in the queue table; the collector's counts can lag by a second or so.
    const churned = this.outcomes > 50;
    this.writes = 0;
    this.outcomes = 0;
    this.running = (async () => {
      const took: Record<string, number> = {};
      try {
        for (const t of await tableActivity(this.sql)) {
          const queue = churned && t.table === "qstash_messages";
          const work = {
            vacuum: queue || t.deadRows > 50 + 0.05 * t.liveRows,
            analyze: queue || t.changedSinceAnalyze > 50 + 0.1 * t.liveRows,
          };
          if (this.stopped || (!work.vacuum && !work.analyze)) continue;
          const start = performance.now();
          await vacuum(this.sql, t.table, work);
          took[t.table] = Math.round((performance.now() - start) * 10) / 10;
        }
      } catch (error) {
        if (!this.stopped) this.log(`vacuum: ${error instanceof Error ? error.message : String(error)}`);
      }
      this.runs++;
      this.lastMs = took;
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}
