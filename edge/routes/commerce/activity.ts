// The activity endpoint: every domain and security event, newest first, from the append-only log (admin only).
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
