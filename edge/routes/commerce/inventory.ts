// The inventory endpoints: set a sku's stock and price, and read it (cached, refreshed by StockChanged).
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import { inventoryActor, neverSet } from "../../../actors/commerce/inventory.ts";
import { type ActorHost, actorClient } from "../../../actors/runtime/index.ts";
import type { AdminEvents } from "../../audit/admin-events.ts";
import type { GatewayEnv } from "../../env.ts";
import { requireScope, scoped } from "../../middleware/auth/principal.ts";
import { validate } from "../../middleware/validation/index.ts";
import { json, jsonBodyErrors, problem, requires } from "../../openapi.ts";
import { SkuView as SkuBody } from "../responses.ts";
import { type CachedReads, cacheHeader, cacheHeaders, noCache } from "./cache.ts";
import { PutInventoryBody, SkuParam } from "./schemas.ts";

export interface InventoryRoutesOptions {
  actors: ActorHost;
  cache?: CachedReads;
  /**
   * Records each Put as `admin.inventory_set`, with the stock and price before (once set; the restocked units alone
   * for a sku never set) and after.
   */
  adminEvents?: AdminEvents | undefined;
}

interface SkuView {
  sku: string;
  available: number;
  reserved: number;
  sold: number;
  priceCents: number;
}

/**
 * The API's sku view, { sku, available, reserved, priceCents }, and `sold` besides (README): with it a client can
 * check API.md's invariant, available + reserved + sold = everything set or restocked. The actor's version is left out.
 */
function publicView(view: SkuView): SkuView {
  const { sku, available, reserved, sold, priceCents } = view;
  return { sku, available, reserved, sold, priceCents };
}

export function inventoryRoutes(options: InventoryRoutesOptions): Hono<GatewayEnv> {
  const skus = actorClient(options.actors, inventoryActor);
  const cache = options.cache ?? noCache;
  const app = new Hono<GatewayEnv>();

  app.put(
    "/v1/inventory/:sku",
    describeRoute({
      summary: "Set a sku's available stock and price",
      description:
        "Recorded in the activity log as admin.inventory_set: who, and the stock and price before (once the sku was " +
        "set; for a sku never set, the restocked units it held, without a price) and after, as the inventory actor " +
        "applied them.",
      tags: ["inventory"],
      ...requires("inventory:write", { 200: json("The sku as set", SkuBody), ...jsonBodyErrors }),
    }),
    scoped("inventory:write"),
    validate("param", SkuParam),
    validate("json", PutInventoryBody),
    async (c) => {
      requireScope(c.var.principal, "inventory:write");
      const { sku } = c.req.valid("param");
      const view = await skus.ask(sku, "Put", c.req.valid("json"), { signal: c.var.signal });
      // Read-your-writes: a cached view older than this one is not served again.
      await cache.advance(`inventory:${sku}`, view.version);
      // The values before come from the turn that applied the Put: a separate read could see another Put's.
      const before = view.previous;
      await options.adminEvents?.record(
        c,
        "inventory_set",
        { subject: sku, sku },
        {
          ...(before ? { availableBefore: before.available } : {}),
          ...(before?.priceCents === undefined ? {} : { priceCentsBefore: before.priceCents }),
          availableAfter: view.available,
          priceCentsAfter: view.priceCents,
        },
      );
      return c.json(publicView(view));
    },
  );

  app.get(
    "/v1/inventory/:sku",
    describeRoute({
      summary: "Read a sku",
      tags: ["inventory"],
      ...requires("inventory:read", {
        200: { ...json("The sku", SkuBody), headers: cacheHeaders },
        404: problem("The sku was never set (restocked units waiting for a price are named)"),
      }),
    }),
    scoped("inventory:read"),
    validate("param", SkuParam),
    async (c) => {
      requireScope(c.var.principal, "inventory:read");
      const { sku } = c.req.valid("param");
      const read = await cache.read(`inventory:${sku}`, async () => {
        // A sku without state would answer from its initial state, never set: answered so here where the host says
        // it has none (`onlyIfState`), without activating it (each unknown sku a client sends would load one). Inside
        // the load, so nothing is cached.
        const current = await skus.askIfState(sku, "Get", {}, { signal: c.var.signal });
        if (current === undefined) throw neverSet(sku, inventoryActor.initial(sku));
        return { version: current.version, value: current };
      });
      c.header(cacheHeader, read.hit ? "hit" : "miss");
      return c.json(publicView(read.value as SkuView));
    },
  );

  return app;
}
