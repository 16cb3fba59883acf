// POST /v1/backup (admin): a consistent archive of the running node, streamed as `npm run backup` would write it.
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import type { AdminEvents } from "../../edge/audit/admin-events.ts";
import type { GatewayEnv } from "../../edge/env.ts";
import { requireScope, scoped } from "../../edge/middleware/auth/principal.ts";
import { problem, requires, unavailable } from "../../edge/openapi.ts";
import { type OnlineBackupParts, takeOnlineBackup } from "./online.ts";

/** `adminEvents` records each archive handed out as `admin.backup_taken`, before its first byte is sent. */
export function onlineBackupRoutes(
  parts: OnlineBackupParts & { adminEvents?: AdminEvents },
): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  // One at a time: a second would pause the node again for a copy the first is already making.
  const busy = { now: false };
  app.post(
    "/v1/backup",
    describeRoute({
      summary:
        "Back up this node while it runs (admin): both stores copied at one quiet instant, answered as the gzipped tar `npm run restore` takes",
      tags: ["operations"],
      ...requires("admin", {
        200: {
          description: "The archive (it holds the node's secrets); its manifest lists each file's sha256",
          content: { "application/gzip": { schema: { type: "string", format: "binary" } } },
        },
        409: problem(
          "The node keeps its Postgres at DATABASE_URL (back it up offline), or a backup is under way",
        ),
        503: unavailable("No quiet instant came within the bound (a transaction stayed open): Retry-After"),
      }),
    }),
    scoped("admin"),
    async (c) => {
      requireScope(c.var.principal, "admin");
      const { manifest, body, size, quietAfterMs, pausedMs } = await takeOnlineBackup(parts, busy);
      c.var.log.info("online backup: both stores copied at one quiet instant; streaming the archive", {
        quiet_after_ms: quietAfterMs,
        paused_ms: pausedMs,
        files: manifest.entries.filter((entry) => entry.type === "file").length,
      });
      // Who took the node's secrets away, and when: recorded before the archive's first byte leaves.
      await parts.adminEvents?.record(
        c,
        "backup_taken",
        { subject: "backup", createdAt: manifest.createdAt },
        { bytes: size, files: manifest.entries.filter((entry) => entry.type === "file").length },
      );
      const name = `edgewise-backup-${manifest.createdAt.replace(/[:.]/g, "-")}.tar.gz`;
      return new Response(body, {
        status: 200,
        headers: {
          "content-type": "application/gzip",
          "content-length": String(size),
          "content-disposition": `attachment; filename="${name}"`,
          "cache-control": "no-store",
        },
      });
    },
  );
  return app;
}
