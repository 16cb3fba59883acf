// The orders projector: a MessageConsumer (`projector/orders`) keeping `orders_read` from the order events.
import type postgres from "postgres";
import { type Envelope, parseEnvelope } from "../../../shared/envelope/index.ts";
import type { SchemaMarkers } from "../../../shared/postgres/schema-marker.ts";
import { rolledBackForConflict } from "../../../shared/resilience/sql-failures.ts";
import type { MessageConsumer } from "../../runtime/consumers.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import { Participants } from "../messages.ts";
import { type OrderEvent, parseOrderEvent } from "./order-events.ts";
import { type MergeResult, mergeOrder, type OrderView } from "./order-merge.ts";
import { getOrder, type ListOrdersQuery, listOrders } from "./orders-query.ts";
import {
  fromRow,
  insertOrder,
  migrateOrdersRead,
  type OrderRow,
  orderColumns,
  updateOrder,
} from "./orders-table.ts";
import type { Page } from "./page-limit.ts";

/** The reply of a projector turn. */
export interface ProjectionReply {
  orderId: string;
  /** The row's version after the event. */
  version: number;
  /** The event was newer than the row, so its status was taken. */
  applied: boolean;
}

/**
 * Subscribed to OrderPlaced, OrderConfirmed, OrderRejected, OrderCancelled and OrderRefunded, key `orders`. Idempotent by
 * construction: an event changes a row's status only when its `version` is greater than the row's, so a
 * redelivered or late event is a no-op (`duplicate: true` when it changed nothing at all). Takes the caller's pool
 * and never opens one; each event is one short transaction (a row lock, then one write).
 */
export class OrdersProjector<Types extends Record<string, unknown> = Record<string, never>>
  implements MessageConsumer
{
  readonly type = Participants.projector;

  constructor(private readonly sql: postgres.Sql<Types>) {}

  /** Creates the table and indexes if missing; safe on every start and from several nodes at once. */
  migrate(markers?: SchemaMarkers): Promise<void> {
    return migrateOrdersRead(this.sql, markers);
  }

  async receive(envelope: Envelope): Promise<TurnOutcome> {
    const checked = parseEnvelope(envelope);
    const event = parseOrderEvent(checked, this.type);
    const result = await this.apply(event, Date.parse(checked.time));
    const reply: ProjectionReply = {
      orderId: result.record.orderId,
      version: result.record.version,
      applied: result.applied,
    };
    return { duplicate: !result.changed, reply };
  }

  /**
   * Folds one event in; `at` is the event's time in epoch ms. The transaction is READ COMMITTED whatever the role's
   * `default_transaction_isolation`: its row lock and the merge by version are what keep the row right, and under
   * serializable, events of different orders inserted at once ended each other (40001, read/write dependencies
   * through the index pages they share), about one in two, again when run once more. One the server still rolls
   * back for a conflict (a deadlock, 40P01) runs once more at once, as the billing ledger's do: nothing of it was
   * applied, and the merge is by version, so running it again is safe.
   */
  async apply(event: OrderEvent, at: number): Promise<MergeResult> {
    return await this.applyOnce(event, at).catch((error: unknown) => {
      if (!rolledBackForConflict(error)) throw error;
      return this.applyOnce(event, at);
    });
  }

  private async applyOnce(event: OrderEvent, at: number): Promise<MergeResult> {
    return await this.sql.begin("isolation level read committed", async (tx) => {
      // Twice at most: when a concurrent first event inserted the row between the read and the insert.
      for (let attempt = 0; ; attempt++) {
        const [row] = await tx<OrderRow[]>`
          SELECT ${orderColumns(tx)} FROM orders_read WHERE order_id = ${event.data.orderId} FOR UPDATE`;
        const existing = row ? fromRow(row) : undefined;
        const result = mergeOrder(existing, event, at);
        if (!result.changed) return result;
        if (existing) {
          await updateOrder(tx, result.record);
          return result;
        }
        if ((await insertOrder(tx, result.record)) || attempt > 0) return result;
      }
    });
  }

  getOrder(orderId: string): Promise<OrderView | undefined> {
    return getOrder(this.sql, orderId);
  }

  /** GET /v1/orders. Without `admin`, the gateway must set `customerId` to the caller's `sub`. */
  listOrders(query: ListOrdersQuery): Promise<Page<OrderView>> {
    return listOrders(this.sql, query);
  }
}
