// The broker's request router: health, authentication, then the QStash v2 paths, every error as {"error": "..."}.
import { isEdgewiseError } from "../../../shared/errors/index.ts";
import {
  answeredByPostgres,
  asPostgresFailure,
  lostPostgresConnection,
} from "../../../shared/resilience/sql-failures.ts";
import { authorize, errorResponse, HttpError } from "./http-util.ts";
import { dlqRoute, eventsRoute, keysRoute, messagesRoute, queuesRoute } from "./routes-admin.ts";
import { healthRoute } from "./routes-health.ts";
import { type BrokerContext, batch, publish } from "./routes-publish.ts";

async function route(req: Request, ctx: BrokerContext): Promise<Response> {
  const url = new URL(req.url);
  const health = await healthRoute(req, url.pathname, ctx);
  if (health) return health;
  authorize(req, url, ctx.options.token, ctx.options.previousToken);
  const path = url.pathname;
  if (path.startsWith("/v2/publish/")) {
    if (req.method !== "POST") throw new HttpError(405, "method not allowed");
    return await publish(req, ctx, null, "/v2/publish/");
  }
  if (path.startsWith("/v2/enqueue/")) {
    if (req.method !== "POST") throw new HttpError(405, "method not allowed");
    const rawQueue = path.slice("/v2/enqueue/".length).split("/")[0] ?? "";
    let queueName: string;
    try {
      queueName = decodeURIComponent(rawQueue);
    } catch {
      throw new HttpError(400, "invalid queue name");
    }
    return await publish(req, ctx, queueName, `/v2/enqueue/${rawQueue}/`);
  }
  // An empty segment is no route: `DELETE /v2/messages/` with an id left empty must not be the bulk cancel.
  const segments = path.split("/").slice(1).map(pathSegment);
  if (segments.includes("")) throw new HttpError(404, "not found");
  refuseNul(url);
  const [version, resource, ...rest] = segments;
  if (version !== "v2") throw new HttpError(404, "not found");
  switch (resource) {
    case "batch":
      if (rest.length > 0) break;
      if (req.method !== "POST") throw new HttpError(405, "method not allowed");
      return await batch(req, ctx);
    case "messages":
      if (rest.length > 1) break;
      return await messagesRoute(req, url, ctx, rest[0]);
    case "dlq":
      if (rest.length > 2) break;
      return await dlqRoute(req, url, ctx, rest);
    case "queues":
      if (rest.length > 2) break;
      return await queuesRoute(req, ctx, rest);
    case "events":
    case "logs":
      if (rest.length > 0) break;
      return await eventsRoute(req, url, ctx);
    case "keys":
      if (rest.length > 0) break;
      return keysRoute(req, ctx);
  }
  throw new HttpError(404, "not found");
}

/** A path segment, percent-decoded; malformed encoding or a NUL (which no id or name holds) is a 400. */
function pathSegment(raw: string): string {
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    throw new HttpError(
      400,
      `malformed percent-encoding in path segment ${JSON.stringify(raw.slice(0, 100))}`,
    );
  }
  if (text.includes("\0")) throw new HttpError(400, "a path segment must not contain NUL");
  return text;
}

/** Filters go to Postgres as text, which cannot hold NUL. */
function refuseNul(url: URL): void {
  for (const [name, value] of url.searchParams) {
    if (name.includes("\0") || value.includes("\0"))
      throw new HttpError(400, "a query parameter must not contain NUL");
  }
}

/**
 * Postgres answering that it cannot serve this call now, as the gateway's one mapping (`asPostgresFailure`) says:
 * a lock wait past `lock_timeout`, a deadlock or a serialization failure (the statement, one per write, rolled back
 * whole), or the server shutting down or out of connections; or the driver's connection to it lost or refused (a
 * reset, a refused connect: Postgres is down or restarting). A QStash client retries a 503 after `Retry-After`. Only
 * the server's own answers and those driver codes are mapped: any other error here may be the broker's bug, a 500.
 */
function postgresRefusal(error: unknown): { code: string; message: string; retryAfter: number } | undefined {
  if (!answeredByPostgres(error) && !lostPostgresConnection(error)) return undefined;
  const failure = asPostgresFailure(error);
  if (!isEdgewiseError(failure) || failure.status !== 503 || !failure.public) return undefined;
  const seconds = failure.meta?.retryAfterSeconds;
  return {
    code: String((error as { code?: unknown }).code),
    message: failure.message,
    retryAfter: typeof seconds === "number" ? Math.max(0, Math.ceil(seconds)) : 1,
  };
}

/** Handles one request; errors become QStash-shaped JSON, and unexpected ones are logged, not shown. */
export async function handle(req: Request, ctx: BrokerContext): Promise<Response> {
  try {
    return await route(req, ctx);
  } catch (error) {
    if (error instanceof HttpError) return errorResponse(error.status, error.message);
    const request = `request ${req.method} ${new URL(req.url).pathname}`;
    const refusal = postgresRefusal(error);
    if (refusal) {
      ctx.options.log(
        `${request}: answered 503 (retry in ${refusal.retryAfter} s): ${refusal.code} ${String(error)}`,
      );
      return errorResponse(503, refusal.message, { "retry-after": String(refusal.retryAfter) });
    }
    ctx.options.log(`${request}: ${String(error)}`);
    return errorResponse(500, "internal error");
  }
}
