// EDGEWISE_ACTIVITY_RETENTION: the node deletes activity-log entries older than it, at start and every hour.
import type { ActivityLog } from "../actors/commerce/projections/index.ts";
import { PeriodicJob } from "./periodic-job.ts";

/**
 * The activity log keeps every domain event (about 6 an order: OrderPlaced, StockChanged per line, OrderConfirmed)
 * and grows for good unless something calls `pruneActivity`: about 320,000 rows and 370 MB an hour at 15 orders/s
 * on PGlite (bench/soak). With a retention set, the node prunes entries recorded before it, at start and then every
 * `everyMs`, in pruneActivity's short batches; a prune still running when the next is due is not doubled.
 */
export class ActivityRetention {
  private readonly job: PeriodicJob;
  /** Entries deleted so far. */
  pruned = 0;

  constructor(
    log: Pick<ActivityLog, "pruneActivity">,
    private readonly options: { keepMs: number; everyMs?: number; onError?: (error: unknown) => void },
  ) {
    this.job = new PeriodicJob(() =>
      log.pruneActivity({ olderThan: Date.now() - options.keepMs }).then(
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
