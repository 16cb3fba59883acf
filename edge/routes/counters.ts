// The demo counter routes: the smallest path from the gateway to an actor and back (an ask).
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import { counterActor } from "../../actors/examples/counter.ts";
import { type ActorHost, actorClient } from "../../actors/runtime/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../env.ts";
import { sha256Hex } from "../../shared/crypto/hex.ts";
import { validate } from "../middleware/validation/index.ts";
import { authenticated, json, jsonBodyErrors } from "../openapi.ts";
import { idempotencyKey, idempotencyKeySchema } from "./idempotency-key.ts";
import { CounterView } from "./responses.ts";

const KeyParam = v.object({
  key: v.pipe(v.string(), v.regex(/^[A-Za-z0-9._~-]{1,256}$/, "must be URL-safe")),
});
const IncrementBody = v.strictObject({
  by: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000))),
});

/**
 * The increment's message id for an Idempotency-Key: the id the actor's inbox remembers it by, for the retention
 * window. The key as it is where that fits a message id (at most 256 characters, as every id was before), its
 * SHA-256 otherwise, under a prefix no key can make.
 */
async function incrementId(key: string): Promise<string> {
  const plain = `counter-increment:${key}`;
  return plain.length <= 256 ? plain : `counter-increment-sha256:${await sha256Hex(key)}`;
}

export interface CounterRouteOptions {
  /** When the gateway authenticates, the demo counters need a caller (any scope). */
  requireCaller: boolean;
}

export function counterRoutes(actors: ActorHost, options: CounterRouteOptions = { requireCaller: false }) {
  const counters = actorClient(actors, counterActor);
  const app = new Hono<GatewayEnv>();
  if (options.requireCaller) {
    app.use("/v1/counters/*", async (c, next) => {
      if (!c.var.principal) throw new EdgewiseError("unauthorized", "authentication required");
      await next();
    });
  }
  app.post(
    "/v1/counters/:key/increment",
    describeRoute({
      summary: "Increment a demo counter",
      tags: ["demo"],
      parameters: [
        {
          in: "header",
          name: "Idempotency-Key",
          required: false,
          description:
            "1-255 visible ASCII characters: a retry with the same key on the same counter returns the same reply",
          schema: idempotencyKeySchema,
        },
      ],
      ...authenticated({ 200: json("The new count", CounterView), ...jsonBodyErrors }),
    }),
    validate("param", KeyParam),
    validate("json", IncrementBody),
    async (c) => {
      const key = idempotencyKey(c.req.header("idempotency-key"));
      const reply = await counters.ask(
        c.req.valid("param").key,
        "Increment",
        { by: c.req.valid("json").by ?? 1 },
        { signal: c.var.signal, ...(key === undefined ? {} : { id: await incrementId(key) }) },
      );
      return c.json(reply);
    },
  );
  app.get(
    "/v1/counters/:key",
    describeRoute({
      summary: "Read a demo counter",
      tags: ["demo"],
      ...authenticated({ 200: json("The count", CounterView) }),
    }),
    validate("param", KeyParam),
    async (c) => c.json(await counters.ask(c.req.valid("param").key, "Get", {}, { signal: c.var.signal })),
  );
  return app;
}
