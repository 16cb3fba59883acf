// The broker's request router: authentication, then the QStash v2 paths, with every error as {"error": "..."}.
import { authorize, errorResponse, HttpError } from "./http-util.ts";
import { dlqRoute, eventsRoute, keysRoute, messagesRoute, queuesRoute } from "./routes-admin.ts";
import { type BrokerContext, batch, publish } from "./routes-publish.ts";

async function route(req: Request, ctx: BrokerContext): Promise<Response> {
  const url = new URL(req.url);
  authorize(req, url, ctx.options.token);
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
  const segments = path.split("/").filter((s) => s.length > 0);
  const [version, resource, ...rest] = segments;
  if (version !== "v2") throw new HttpError(404, "not found");
  switch (resource) {
    case "batch":
      if (rest.length > 0) break;
      if (req.method !== "POST") throw new HttpError(405, "method not allowed");
      return await batch(req, ctx);
    case "messages":
      if (rest.length > 1) break;
      return await messagesRoute(
        req,
        url,
        ctx,
        rest[0] === undefined ? undefined : decodeURIComponent(rest[0]),
      );
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

/** Handles one request; errors become QStash-shaped JSON, and unexpected ones are logged, not shown. */
export async function handle(req: Request, ctx: BrokerContext): Promise<Response> {
  try {
    return await route(req, ctx);
  } catch (error) {
    if (error instanceof HttpError) return errorResponse(error.status, error.message);
    ctx.options.log(`request ${req.method} ${new URL(req.url).pathname}: ${String(error)}`);
    return errorResponse(500, "internal error");
  }
}
