// The loyalty endpoint: a customer's points, read from their Loyalty actor.
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import { customerKey } from "../../../actors/commerce/customer-key.ts";
import { loyaltyActor } from "../../../actors/commerce/loyalty.ts";
import { type ActorHost, actorClient } from "../../../actors/runtime/index.ts";
import type { GatewayEnv } from "../../env.ts";
import { requireOwner, requireScope, scoped } from "../../middleware/auth/principal.ts";
import { validate } from "../../middleware/validation/index.ts";
import { json, requires } from "../../openapi.ts";
import { LoyaltyView } from "../responses.ts";
import { CustomerParam } from "./schemas.ts";

export function loyaltyRoutes(actors: ActorHost): Hono<GatewayEnv> {
  const loyalty = actorClient(actors, loyaltyActor);
  const app = new Hono<GatewayEnv>();
  app.get(
    "/v1/customers/:customerId/loyalty",
    describeRoute({
      summary: "A customer's loyalty points",
      tags: ["loyalty"],
      ...requires("loyalty:read", {
        200: json("The customer's points (0 for a customer who has none yet)", LoyaltyView),
      }),
    }),
    scoped("loyalty:read"),
    validate("param", CustomerParam),
    async (c) => {
      const caller = requireScope(c.var.principal, "loyalty:read");
      const { customerId } = c.req.valid("param");
      requireOwner(caller, customerId);
      const view = await loyalty.ask(customerKey(customerId), "Get", {}, { signal: c.var.signal });
      return c.json({ customerId, points: view.points });
    },
  );
  return app;
}
