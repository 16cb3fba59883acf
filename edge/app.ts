// The gateway app, portable across Bun, Deno and Workers. At this stage: health, and a demo route to an actor.
import { Hono } from "hono";
import * as v from "valibot";
import { EdgewiseError, problemContentType, toProblem } from "../shared/errors/index.ts";
import { validationError } from "../shared/errors/valibot.ts";
import { type ActorHost, actorClient } from "../actors/runtime/index.ts";
import { counterActor } from "../actors/examples/counter.ts";
import { type DeliveryOptions, deliveryRoutes } from "./routes/deliver.ts";

export interface AppOptions {
  /** Where actors run: the local host in process, or Durable Object stubs on Workers. */
  actors: ActorHost;
  /** The broker's signing keys and the public URL it delivers to; without them, no delivery endpoint. */
  delivery?: Omit<DeliveryOptions, "actors">;
}

const IncrementBody = v.strictObject({ by: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))) });

export function createApp(options: AppOptions): Hono {
  const app = new Hono();
  const counters = actorClient(options.actors, counterActor);

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  if (options.delivery) app.route("/", deliveryRoutes({ ...options.delivery, actors: options.actors }));

  app.post("/v1/counters/:key/increment", async (c) => {
    const body = await c.req.json().catch(() => {
      throw new EdgewiseError("request.invalid", "the body must be JSON");
    });
    const parsed = v.safeParse(IncrementBody, body);
    if (!parsed.success) throw validationError("request.invalid", "request body", parsed.issues);
    const idempotencyKey = c.req.header("idempotency-key");
    const reply = await counters.ask(
      c.req.param("key"),
      "Increment",
      { by: parsed.output.by ?? 1 },
      idempotencyKey ? { id: `counter-increment:${idempotencyKey}` } : {},
    );
    return c.json(reply);
  });

  app.get("/v1/counters/:key", async (c) => c.json(await counters.ask(c.req.param("key"), "Get", {})));

  app.notFound((c) => {
    const problem = toProblem(new EdgewiseError("not_found", `no route for ${c.req.method} ${c.req.path}`));
    return c.body(JSON.stringify(problem), 404, { "content-type": problemContentType });
  });

  app.onError((error, c) => {
    const problem = toProblem(error, c.req.path);
    if (problem.status >= 500) console.error(`[edgewise] ${c.req.method} ${c.req.path} failed`, error);
    return c.body(JSON.stringify(problem), problem.status as 500, { "content-type": problemContentType });
  });

  return app;
}
