// The order endpoints: place (with Idempotency-Key), read (cached once settled), cancel, and list from the read model.
import { type Context, Hono } from "hono";
import { describeRoute } from "hono-openapi";
import { type ActorHost, actorClient } from "../../../actors/runtime/index.ts";
import { orderActor, orderNotFound } from "../../../actors/commerce/order.ts";
import { newId } from "../../../shared/ids/index.ts";
import type { GatewayEnv } from "../../env.ts";
import { hasScope, requireOwner, requireScope, scoped } from "../../middleware/auth/principal.ts";
import { validate } from "../../middleware/validation/index.ts";
import { header, json, jsonBodyErrors, problem, requires, unavailable } from "../../openapi.ts";
import { idempotencyKey, idempotencyKeySchema } from "../idempotency-key.ts";
import { OrderAccepted, OrderPage, OrderView } from "../responses.ts";
import { type CachedReads, cacheHeader, cacheHeaders, noCache } from "./cache.ts";
import { ListOrdersQuery, OrderParam, PlaceOrderBody } from "./schemas.ts";

/** The orders read model (Postgres), as the list endpoint needs it. */
export interface OrdersReadModel {
  listOrders(query: {
    customerId?: string;
    status?: "pending" | "confirmed" | "rejected" | "cancelled";
    q?: string;
    limit?: number;
    cursor?: string;
  }): Promise<{ items: unknown[]; nextCursor: string | null }>;
}

export interface OrderRoutesOptions {
  actors: ActorHost;
  readModel: OrdersReadModel;
  cache?: CachedReads;
}

/**
 * One order per (caller, Idempotency-Key): its id is derived from both, so a retry reaches the same actor,
 * which compares the body (same body: the same order; another body: 422). Nothing else is stored.
 */
async function orderIdFor(sub: string, header: string | undefined): Promise<string> {
  const key = idempotencyKey(header);
  if (key === undefined) return newId();
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${sub}\n${key}`));
  const base64 = btoa(String.fromCharCode(...new Uint8Array(digest).subarray(0, 18)));
  return `idem-${base64.replaceAll("+", "-").replaceAll("/", "_")}`;
}

/**
 * True when this `POST /v1/orders` repeats a placement already accepted: the caller's order for its Idempotency-Key
 * exists. Admission lets it through while refusing new work, since it writes nothing new (the order actor answers it
 * from its state, as a read). An order has state once placed (a Place that failed commits none), so its read is
 * asked `onlyIfState`: a host that can tell (the local host, one indexed lookup; a remote actor host, in the same
 * request) answers a key never placed without activating its order; on one that cannot, the order answers
 * `orderNotFound`. A missing order, or no key, rejects or is false.
 */
export function placedBefore(actors: ActorHost) {
  const orders = actorClient(actors, orderActor);
  return async (c: Context<GatewayEnv>): Promise<boolean> => {
    const header = c.req.header("idempotency-key");
    const caller = c.var.principal;
    if (header === undefined || caller === undefined) return false;
    const orderId = await orderIdFor(caller.sub, header);
    return (await orders.askIfState(orderId, "Get", {}, { signal: c.var.signal })) !== undefined;
  };
}

/** The API's order view: the actor's reply without its internal version counter. */
function publicView(view: { version?: number } & Record<string, unknown>) {
  const { version: _version, ...rest } = view;
  return rest;
}

export function orderRoutes(options: OrderRoutesOptions): Hono<GatewayEnv> {
  const orders = actorClient(options.actors, orderActor);
  const cache = options.cache ?? noCache;
  const app = new Hono<GatewayEnv>();

  const readOrder = (orderId: string, signal: AbortSignal) =>
    cache.read(
      `order:${orderId}`,
      async () => {
        // An order without state was never placed (a Place that failed commits none): the host says so without
        // activating it (`onlyIfState`), and the answer is its actor's own. A host that cannot tell asks the order,
        // which throws the same. Inside the load: a cached entry is served as before, and a throw is not cached.
        const view = await orders.askIfState(orderId, "Get", {}, { signal });
        if (view === undefined) throw orderNotFound(orderId);
        return { version: view.version, value: view };
      },
      // A pending order changes as reservations arrive, and a cancelled one when its refund lands: neither change
      // publishes an event to invalidate the cache, so only orders that will not change again are cached.
      { cacheable: (view) => settled(view as { status: string; refundedAt?: string }) },
    );

  app.post(
    "/v1/orders",
    describeRoute({
      summary: "Place an order",
      tags: ["orders"],
      parameters: [
        {
          in: "header",
          name: "Idempotency-Key",
          required: false,
          description:
            "1-255 visible ASCII characters (else 400): the same key, caller and body give the same orderId; the same key with another body is 422",
          schema: idempotencyKeySchema,
        },
      ],
      ...requires("orders:write", {
        202: {
          ...json("Accepted: the order, pending until the saga settles it", OrderAccepted),
          headers: { Location: header("The order's address: /v1/orders/{orderId}", { type: "string" }) },
        },
        422: problem("idempotency.mismatch: this Idempotency-Key was used with another body"),
        ...jsonBodyErrors,
        503: unavailable(
          "overloaded: the node's queue is behind (EDGEWISE_MAX_QUEUE_DELAY), nothing was written, send it again after Retry-After (a retry of an order already accepted, same Idempotency-Key, is answered, not refused); or a dependency is down or its breaker is open",
        ),
      }),
    }),
    scoped("orders:write"),
    validate("json", PlaceOrderBody),
    async (c) => {
      const caller = requireScope(c.var.principal, "orders:write");
      const body = c.req.valid("json");
      requireOwner(caller, body.customerId);
      const orderId = await orderIdFor(caller.sub, c.req.header("idempotency-key"));
      const view = await orders.ask(orderId, "Place", body, { signal: c.var.signal });
      c.header("Location", `/v1/orders/${orderId}`);
      return c.json({ orderId, status: view.status }, 202);
    },
  );

  app.get(
    "/v1/orders/:orderId",
    describeRoute({
      summary: "Read an order",
      tags: ["orders"],
      ...requires("orders:read", {
        200: { ...json("The order", OrderView), headers: cacheHeaders },
        404: problem("No such order"),
      }),
    }),
    scoped("orders:read"),
    validate("param", OrderParam),
    async (c) => {
      const caller = requireScope(c.var.principal, "orders:read");
      const read = await readOrder(c.req.valid("param").orderId, c.var.signal);
      const view = read.value as { customerId: string } & Record<string, unknown>;
      requireOwner(caller, view.customerId);
      c.header(cacheHeader, read.hit ? "hit" : "miss");
      return c.json(publicView(view));
    },
  );

  app.post(
    "/v1/orders/:orderId/cancel",
    describeRoute({
      summary: "Cancel an order",
      tags: ["orders"],
      ...requires("orders:write", {
        202: json("Accepted: the order's status now; see the order lifecycle", OrderAccepted),
        404: problem("No such order"),
      }),
    }),
    scoped("orders:write"),
    validate("param", OrderParam),
    async (c) => {
      const caller = requireScope(c.var.principal, "orders:write");
      const { orderId } = c.req.valid("param");
      // The owner first: someone else's order gets 403 before anything changes. An unknown one is 404, as ever,
      // answered without activating it where the host can tell (`onlyIfState`, as in readOrder).
      const current = await orders.askIfState(orderId, "Get", {}, { signal: c.var.signal });
      if (current === undefined) throw orderNotFound(orderId);
      requireOwner(caller, current.customerId);
      const view = await orders.ask(orderId, "Cancel", {}, { signal: c.var.signal });
      // Read-your-writes: a cached "confirmed" is not served after this cancel answered "cancelled".
      await cache.advance(`order:${orderId}`, view.version);
      return c.json({ orderId, status: view.status }, 202);
    },
  );

  app.get(
    "/v1/orders",
    describeRoute({
      summary: "List and search orders (read model; may lag by one event delivery)",
      tags: ["orders"],
      ...requires("orders:read", { 200: json("A page of orders, newest first", OrderPage) }),
    }),
    scoped("orders:read"),
    validate("query", ListOrdersQuery),
    async (c) => {
      const caller = requireScope(c.var.principal, "orders:read");
      const query = c.req.valid("query");
      // Without admin, a caller lists its own orders only: no filter means "mine", another customer is 403.
      const customerId = hasScope(caller, "admin") ? query.customerId : (query.customerId ?? caller.sub);
      if (customerId !== undefined) requireOwner(caller, customerId);
      const page = await options.readModel.listOrders({
        ...query,
        ...(customerId !== undefined ? { customerId } : {}),
      });
      return c.json(page);
    },
  );

  return app;
}

/** An order that no later message changes: confirmed or rejected, or cancelled with its refund recorded. */
function settled(view: { status: string; refundedAt?: string }): boolean {
  return view.status !== "pending" && (view.status !== "cancelled" || view.refundedAt !== undefined);
}
