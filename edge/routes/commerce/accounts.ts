// The account endpoints: set and read a customer's balance in the Postgres ledger (billing).
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import type { AdminEvents } from "../../audit/admin-events.ts";
import type { GatewayEnv } from "../../env.ts";
import { requireOwner, requireScope, scoped } from "../../middleware/auth/principal.ts";
import { validate } from "../../middleware/validation/index.ts";
import { json, problem, requires } from "../../openapi.ts";
import { AccountView } from "../responses.ts";
import { CustomerParam, PutAccountBody } from "./schemas.ts";

/** What the routes need from the ledger. */
export interface AccountsLedger {
  /** The account as set, and its balance just before (0 for a new account), read in the same transaction. */
  putAccount(
    customerId: string,
    balanceCents: number,
  ): Promise<{ customerId: string; balanceCents: number; previousBalanceCents?: number }>;
  /** Throws not_found for an account never set. */
  getAccount(customerId: string): Promise<{ customerId: string; balanceCents: number }>;
}

/** `adminEvents` records each balance set as `admin.account_set`, before and after. */
export function accountRoutes(ledger: AccountsLedger, adminEvents?: AdminEvents): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();

  app.put(
    "/v1/accounts/:customerId",
    describeRoute({
      summary: "Set a customer's balance",
      tags: ["billing"],
      ...requires("billing:write", { 200: json("The account as set", AccountView) }),
    }),
    scoped("billing:write"),
    validate("param", CustomerParam),
    validate("json", PutAccountBody),
    async (c) => {
      const caller = requireScope(c.var.principal, "billing:write");
      const { customerId } = c.req.valid("param");
      requireOwner(caller, customerId);
      const set = await ledger.putAccount(customerId, c.req.valid("json").balanceCents);
      await adminEvents?.record(
        c,
        "account_set",
        { subject: customerId, customerId },
        {
          ...(set.previousBalanceCents !== undefined ? { balanceCentsBefore: set.previousBalanceCents } : {}),
          balanceCentsAfter: set.balanceCents,
        },
      );
      return c.json({ customerId: set.customerId, balanceCents: set.balanceCents });
    },
  );

  app.get(
    "/v1/accounts/:customerId",
    describeRoute({
      summary: "Read a customer's balance",
      tags: ["billing"],
      ...requires("billing:read", {
        200: json("The account", AccountView),
        404: problem("The account was never set"),
      }),
    }),
    scoped("billing:read"),
    validate("param", CustomerParam),
    async (c) => {
      const caller = requireScope(c.var.principal, "billing:read");
      const { customerId } = c.req.valid("param");
      requireOwner(caller, customerId);
      return c.json(await ledger.getAccount(customerId));
    },
  );

  return app;
}
