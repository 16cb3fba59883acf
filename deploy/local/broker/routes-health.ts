// The broker's own health for its supervisor: GET /healthz (up) and GET /readyz (its Postgres answers), no token.
import { isTimeout, withTimeout } from "../../../shared/resilience/index.ts";
import { HttpError, json } from "./http-util.ts";
import type { BrokerContext } from "./routes-publish.ts";

/** How long /readyz waits for its database before it says unavailable. */
const checkTimeoutMs = 2_000;

/**
 * QStash itself has no such paths; a self-hosted broker needs them. `/v2/keys` (what a node's /readyz probes) answers
 * without its database, so it stays 200 while every publish fails: `/readyz` asks the database. Undefined for any
 * other path, which then goes through authentication as before.
 */
export async function healthRoute(
  req: Request,
  path: string,
  ctx: BrokerContext,
): Promise<Response | undefined> {
  if (path !== "/healthz" && path !== "/readyz") return undefined;
  if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "method not allowed");
  if (path === "/healthz") return json({ status: "ok" });
  try {
    await withTimeout(async () => void (await ctx.sql`SELECT 1`), checkTimeoutMs);
    return json({ status: "ready", database: { ok: true } });
  } catch (error) {
    const reason = isTimeout(error) ? "timed out" : "unreachable";
    return json({ status: "unavailable", database: { ok: false, reason } }, 503);
  }
}
