// The loyalty actor, one per customer: points credited by confirmed orders and taken back when they are cancelled.
import * as v from "valibot";
import { defineActor, type Subscription, subscribe } from "../runtime/index.ts";
import { EventTypes, OrderCancelled, OrderConfirmed, Participants } from "./messages.ts";

const points = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));

/** What one order did to the balance: `earned` counts while not `takenBack`. */
const OrderPoints = v.object({ earned: points, takenBack: v.boolean() });

export const LoyaltyState = v.object({
  /** The sum of `earned` over the orders not taken back. */
  points,
  byOrder: v.record(v.string(), OrderPoints),
});
export type LoyaltyState = v.InferOutput<typeof LoyaltyState>;

export interface LoyaltyView {
  customerId: string;
  points: number;
}

/** One point per whole currency unit (100 cents) of a confirmed order's total. */
export function pointsFor(totalCents: number): number {
  return Math.floor(totalCents / 100);
}

export const loyaltyActor = defineActor({
  type: Participants.loyalty,
  state: LoyaltyState,
  initial: () => ({ points: 0, byOrder: {} }),
  messages: { OrderConfirmed, OrderCancelled, Get: v.object({}) },
  handlers: {
    OrderConfirmed(ctx, data) {
      if (Object.hasOwn(ctx.state.byOrder, data.orderId)) return;
      const earned = pointsFor(data.totalCents);
      ctx.state.byOrder[data.orderId] = { earned, takenBack: false };
      ctx.state.points += earned;
    },

    /** Takes back exactly what the order earned, once; a cancel seen before its confirm leaves a tombstone. */
    OrderCancelled(ctx, data) {
      if (!data.wasConfirmed) return;
      const entry = Object.hasOwn(ctx.state.byOrder, data.orderId)
        ? ctx.state.byOrder[data.orderId]
        : undefined;
      if (!entry) {
        ctx.state.byOrder[data.orderId] = { earned: 0, takenBack: true };
        return;
      }
      if (entry.takenBack) return;
      entry.takenBack = true;
      ctx.state.points -= entry.earned;
    },

    Get: (ctx): LoyaltyView => ({ customerId: ctx.key, points: ctx.state.points }),
  },
});

/** Loyalty's own wiring: confirmed orders credit their customer; only cancelled confirmed orders debit. */
export const loyaltySubscriptions: Subscription[] = [
  subscribe<v.InferOutput<typeof OrderConfirmed>>({
    event: EventTypes.OrderConfirmed,
    actor: Participants.loyalty,
    keys: (data) => data.customerId,
  }),
  subscribe<v.InferOutput<typeof OrderCancelled>>({
    event: EventTypes.OrderCancelled,
    actor: Participants.loyalty,
    keys: (data) => (data.wasConfirmed ? data.customerId : []),
  }),
];
