// The activity endpoint: every domain, security and admin event, newest first, from the append-only log (admin only).
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import type { GatewayEnv } from "../../env.ts";
import { requireScope, scoped } from "../../middleware/auth/principal.ts";
import { validate } from "../../middleware/validation/index.ts";
import { json, requires } from "../../openapi.ts";
import { ActivityPage } from "../responses.ts";
import { ListActivityQuery } from "./schemas.ts";

export interface ActivityLog {
  listActivity(query: {
    subject?: string;
    type?: string;
    limit?: number;
    cursor?: string;
  }): Promise<{ items: unknown[]; nextCursor: string | null }>;
}

export function activityRoutes(log: ActivityLog): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  app.get(
    "/v1/activity",
    describeRoute({
      summary: "The activity log: CloudEvents, newest first",
      description:
        "Domain events (OrderPlaced, StockChanged, …), security events (security.auth_failed, security.rate_limited, " +
        "security.signature_failed, security.webhook_refused, security.webhook_replayed) and admin actions " +
        "(admin.api_key_created, admin.api_key_revoked, admin.webhook_subscription_created, " +
        "admin.webhook_subscription_deleted, admin.webhook_secret_rotated, admin.account_set, admin.inventory_set, " +
        "admin.dead_letter_replayed, admin.dead_letter_deleted, admin.dead_letters_purged, admin.backup_taken, admin.console_signed_in: who " +
        "did it, the request id, the client IP, the target and the change, never a secret). `type` matches one type " +
        "exactly, or a family ending in `.*` (`admin.*`, `security.*`: every type starting with `admin.`); `subject` matches an event's subject or the orderId, customerId or sku its data names.",
      tags: ["activity"],
      ...requires("admin", { 200: json("A page of the log, newest first", ActivityPage) }),
    }),
    scoped("admin"),
    validate("query", ListActivityQuery),
    async (c) => {
      requireScope(c.var.principal, "admin");
      return c.json(await log.listActivity(c.req.valid("query")));
    },
  );
  return app;
}
