// The loyalty actor, one per customer: points credited by confirmed orders and taken back when they are cancelled.
//
// State is the balance only, so what a turn clones, validates and writes does not grow with the customer's
// orders. What each order did is one kv record, `order:{orderId}` → `{ earned, takenBack }`, read and written
// with the turn.
//
// Version 1 kept those entries in state (`byOrder`). A migration cannot write kv, so migration 2 keeps them as a
// `legacy` map in state. Handlers read kv first and `legacy` second; each order event moves up to
// `legacyMovesPerTurn` of them to kv with its own commit, and writing an order's entry removes its legacy one,
// so `legacy` drains and is dropped once empty. Nothing is lost.
import * as v from "valibot";
import { defineActor, type Subscription, subscribe, type TurnContext } from "../runtime/index.ts";
import { customerIdOfKey, customerKey } from "./customer-key.ts";
import { EventTypes, OrderCancelled, OrderConfirmed, Participants } from "./messages.ts";
import { orderRecords } from "./order-records.ts";

const points = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));

/** What one order did to the balance, in kv under `order:{orderId}`: `earned` counts while not `takenBack`. */
export const OrderPoints = v.object({ earned: points, takenBack: v.boolean() });
export type OrderPoints = v.InferOutput<typeof OrderPoints>;

export const LoyaltyState = v.object({
  /** The sum of `earned` over the orders not taken back. */
  points,
  /** Version 1's per-order entries, orderId → entry, not yet moved to kv; absent once all moved. */
  legacy: v.optional(v.record(v.string(), OrderPoints)),
});
export type LoyaltyState = v.InferOutput<typeof LoyaltyState>;

export interface LoyaltyView {
  customerId: string;
  points: number;
}

/** How many version-1 entries a turn moves from `legacy` to kv (they commit with the turn). */

/** One point per whole currency unit (100 cents) of a confirmed order's total. */
export function pointsFor(totalCents: number): number {
  return Math.floor(totalCents / 100);
}

type Turn = TurnContext<LoyaltyState>;

export const loyaltyActor = defineActor({
  type: Participants.loyalty,
  state: LoyaltyState,
  version: 2,
  migrations: { 2: fromVersion1 },
  initial: () => ({ points: 0 }),
  messages: { OrderConfirmed, OrderCancelled, Get: v.object({}) },
  handlers: {
    /** Credits once per order; an order already seen, even only by a cancel that overtook it, earns nothing. */
    async OrderConfirmed(ctx, data) {
      if ((await entryOf(ctx, data.orderId)) !== undefined) return;
      const earned = pointsFor(data.totalCents);
      write(ctx, data.orderId, { earned, takenBack: false });
      ctx.state.points += earned;
    },

    /** Takes back exactly what the order earned, once; a cancel seen before its confirm leaves a tombstone. */
    async OrderCancelled(ctx, data) {
      if (!data.wasConfirmed) return;
      const entry = await entryOf(ctx, data.orderId);
      if (!entry) {
        write(ctx, data.orderId, { earned: 0, takenBack: true });
        return;
      }
      if (entry.takenBack) return;
      write(ctx, data.orderId, { earned: entry.earned, takenBack: true });
      ctx.state.points -= entry.earned;
    },

    Get: (ctx): LoyaltyView => ({ customerId: customerIdOfKey(ctx.key), points: ctx.state.points }),
  },
});

/** Per-order records in kv (version-1 ones still in state move over lazily). */
const records = orderRecords(OrderPoints);
const entryOf = (ctx: Turn, orderId: string) => records.read(ctx, orderId);
const write = (ctx: Turn, orderId: string, value: v.InferOutput<typeof OrderPoints>) =>
  records.write(ctx, orderId, value);

/** Version 1 → 2: `byOrder` leaves state for `legacy` (see the header); `points` stays. */
function fromVersion1(previous: unknown): unknown {
  const { byOrder = {}, ...rest } = previous as { byOrder?: Record<string, OrderPoints> };
  return Object.keys(byOrder).length === 0 ? rest : { ...rest, legacy: byOrder };
}

/** Loyalty's own wiring: confirmed orders credit their customer; only cancelled confirmed orders debit. */
export const loyaltySubscriptions: Subscription[] = [
  subscribe<v.InferOutput<typeof OrderConfirmed>>({
    event: EventTypes.OrderConfirmed,
    actor: Participants.loyalty,
    keys: (data) => customerKey(data.customerId),
  }),
  subscribe<v.InferOutput<typeof OrderCancelled>>({
    event: EventTypes.OrderCancelled,
    actor: Participants.loyalty,
    keys: (data) => (data.wasConfirmed ? customerKey(data.customerId) : []),
  }),
];
