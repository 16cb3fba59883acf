// The account endpoints: set and read a customer's balance in the Postgres ledger (billing).
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import type { AdminEvent, AdminEvents } from "../../audit/admin-events.ts";
import type { GatewayEnv } from "../../env.ts";
import { requireOwner, requireScope, scoped } from "../../middleware/auth/principal.ts";
import { validate } from "../../middleware/validation/index.ts";
import { json, jsonBodyErrors, problem, requires } from "../../openapi.ts";
import { AccountView } from "../responses.ts";
import { CustomerParam, PutAccountBody } from "./schemas.ts";

/** A balance as set, and the one it replaced (0 for a new account), read in the same transaction. */
export interface AccountSetView {
  customerId: string;
  balanceCents: number;
  previousBalanceCents?: number;
}

/** What the routes need from the ledger. */
export interface AccountsLedger {
  /**
   * The account as set. With `audit`, the event it makes from the set is written in the set's own transaction: both
   * are kept or neither is, and a record that cannot be written fails the call with the balance unchanged. Once
   * `signal` (the request's) has fired, or the call's own timeout, the set is rolled back instead of committed.
   */
  putAccount(
    customerId: string,
    balanceCents: number,
    audit?: (set: AccountSetView) => AdminEvent,
    signal?: AbortSignal,
  ): Promise<AccountSetView>;
  /** Throws not_found for an account never set. */
  getAccount(customerId: string): Promise<{ customerId: string; balanceCents: number }>;
}

/**
 * `adminEvents` records each balance set as `admin.account_set`, before and after, in the ledger's transaction: no
 * balance is set without its record (a failure to write it is the request's 503, the balance unchanged).
 */
export function accountRoutes(ledger: AccountsLedger, adminEvents?: AdminEvents): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();

  app.put(
    "/v1/accounts/:customerId",
    describeRoute({
      summary: "Set a customer's balance",
      description:
        "The balance and its record in the activity log (admin.account_set: who, the balance before and after) are " +
        "written in one transaction: if the record cannot be written, the answer is 503 and the balance is unchanged.",
      tags: ["billing"],
      ...requires("billing:write", {
        200: json("The account as set", AccountView),
        ...jsonBodyErrors,
        409: problem(
          "conflict: the balance plus the customer's captures not yet refunded (any may still be refunded) would pass 9007199254740991 cents; the detail says the most it may be",
        ),
      }),
    }),
    scoped("billing:write"),
    validate("param", CustomerParam),
    validate("json", PutAccountBody),
    async (c) => {
      const caller = requireScope(c.var.principal, "billing:write");
      const { customerId } = c.req.valid("param");
      requireOwner(caller, customerId);
      const { balanceCents } = c.req.valid("json");
      const set = adminEvents
        ? await adminEvents.recordInTransaction(
            c,
            "account_set",
            { subject: customerId, customerId },
            (eventOf) =>
              ledger.putAccount(
                customerId,
                balanceCents,
                (made) =>
                  eventOf({
                    ...(made.previousBalanceCents !== undefined
                      ? { balanceCentsBefore: made.previousBalanceCents }
                      : {}),
                    balanceCentsAfter: made.balanceCents,
                  }),
                c.var.signal,
              ),
          )
        : await ledger.putAccount(customerId, balanceCents, undefined, c.var.signal);
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
