// A retention rule the node runs: deletes what is older than `keepMs`, at start and then every `everyMs`.
import { PeriodicJob } from "./periodic-job.ts";

/**
 * One store's retention on a node: `prune(olderThan)` deletes what was recorded before that epoch-ms cutoff, in
 * batches of its own, and says how many. Runs at start (a node that was down, or started with a shorter retention,
 * catches up at once) and then every `everyMs`; a prune still running when the next is due is not doubled.
 */
export class Retention {
  private readonly job: PeriodicJob;
  /** Rows deleted so far. */
  pruned = 0;

  constructor(
    prune: (olderThan: number) => Promise<number>,
    private readonly options: { keepMs: number; everyMs?: number; onError?: (error: unknown) => void },
  ) {
    this.job = new PeriodicJob(() =>
      prune(Date.now() - options.keepMs).then(
        (count) => {
          this.pruned += count;
        },
        (error: unknown) => options.onError?.(error),
      ),
    );
  }

  start(): void {
    void this.prune();
    this.job.every(this.options.everyMs ?? 3_600_000);
  }

  /** One prune of everything older than the retention (the one under way, if any). */
  prune(): Promise<void> {
    return this.job.run();
  }

  stop(): Promise<void> {
    return this.job.stop();
  }
}
