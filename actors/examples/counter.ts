// An example actor: a durable counter. The smallest complete actor, used by the README, the demo routes and benches.
import * as v from "valibot";
import { defineActor } from "../runtime/index.ts";

export const counterActor = defineActor({
  type: "counter",
  state: v.object({ count: v.pipe(v.number(), v.integer()) }),
  initial: () => ({ count: 0 }),
  messages: {
    Increment: v.object({ by: v.optional(v.pipe(v.number(), v.integer()), 1) }),
    Get: v.object({}),
  },
  handlers: {
    Increment(ctx, data) {
      ctx.state.count += data.by;
      return { count: ctx.state.count };
    },
    Get: (ctx) => ctx.state,
  },
});
