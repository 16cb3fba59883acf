// EDGEWISE_ACTIVITY_RETENTION: the node deletes activity-log entries older than it, at start and every hour.
import type { ActivityLog } from "../actors/commerce/projections/index.ts";
import { Retention } from "./retention.ts";

/**
 * The activity log keeps every domain event (about 6 an order: OrderPlaced, StockChanged per line, OrderConfirmed)
 * and grows for good unless something calls `pruneActivity`: about 320,000 rows and 370 MB an hour at 15 orders/s
 * on PGlite (bench/soak). With a retention set, the node prunes entries recorded before it, at start and then every
 * `everyMs`, in pruneActivity's short batches; a prune still running when the next is due is not doubled.
 */
export class ActivityRetention extends Retention {
  constructor(
    log: Pick<ActivityLog, "pruneActivity">,
    options: { keepMs: number; everyMs?: number; onError?: (error: unknown) => void },
  ) {
    super((olderThan) => log.pruneActivity({ olderThan }), options);
  }
}
