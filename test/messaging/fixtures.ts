// Messaging fixtures: a subscriber actor and the subscription that alone routes the counter's event to it.
import * as v from "valibot";
import { defineActor, type Subscription, subscribe } from "../../actors/runtime/index.ts";

/** What the conformance counter publishes on `Announce` (test/conformance/fixtures.ts). */
const CounterAnnounced = v.object({ key: v.string(), note: v.string() });

/** Keeps every event it handled, envelope and all, so a test can replay the exact one. */
export const subscriber = defineActor({
  type: "subscriber",
  state: v.object({
    received: v.array(
      v.object({ id: v.string(), from: v.string(), note: v.string(), envelope: v.unknown() }),
    ),
  }),
  initial: () => ({ received: [] }),
  messages: { CounterAnnounced, Get: v.object({}) },
  handlers: {
    CounterAnnounced(ctx, data) {
      ctx.state.received.push({ id: ctx.message.id, from: data.key, note: data.note, envelope: ctx.message });
      return { received: ctx.state.received.length };
    },
    Get: (ctx) => ctx.state,
  },
});

/**
 * The composition's subscriptions: every `CounterAnnounced` goes to `subscriber/of-<counter key>` and to
 * `subscriber/all`. The counter's code names neither; this list is the only place they are wired.
 */
export const subscriptions: Subscription[] = [
  subscribe<v.InferOutput<typeof CounterAnnounced>>({
    event: "CounterAnnounced",
    actor: "subscriber",
    keys: (data) => [`of-${data.key}`, "all"],
  }),
];
