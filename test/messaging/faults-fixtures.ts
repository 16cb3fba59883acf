// Actors for the messaging fault tests: a forwarder that sends to any actor type, and a late-deployed `ghost`.
import * as v from "valibot";
import { defineActor } from "../../actors/runtime/index.ts";

export const forwarder = defineActor({
  type: "forwarder",
  state: v.object({ sent: v.number() }),
  initial: () => ({ sent: 0 }),
  messages: {
    Forward: v.object({ type: v.string(), key: v.string(), message: v.string(), count: v.number() }),
  },
  handlers: {
    Forward(ctx, data) {
      const ids: string[] = [];
      for (let i = 0; i < data.count; i++)
        ids.push(ctx.send({ type: data.type, key: data.key }, data.message, {}));
      ctx.state.sent += data.count;
      return { ids };
    },
  },
});

/** Deployed only after messages for it were dead-lettered. */
export const ghost = defineActor({
  type: "ghost",
  state: v.object({ hits: v.number() }),
  initial: () => ({ hits: 0 }),
  messages: { Hit: v.object({}), Get: v.object({}) },
  handlers: {
    Hit(ctx) {
      ctx.state.hits += 1;
    },
    Get: (ctx) => ctx.state,
  },
});
