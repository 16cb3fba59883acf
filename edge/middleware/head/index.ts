// HEAD answers carry the Content-Length their GET would have (RFC 9110 §8.6), not the 0 a body-less answer gets.
import type { Context, MiddlewareHandler, Next } from "hono";

/**
 * Hono answers HEAD with its GET's response minus the body, and Bun and Deno then write `Content-Length: 0`: that
 * tells a client or a cache the resource is empty, which the RFC forbids. Outermost, so it sees the final answer.
 * An event stream is left as it is: it has no length, and reading it would never end.
 */
export function headContentLength(): MiddlewareHandler {
  // Anything but HEAD passes straight through: no await of its own on the gateway's hot path.
  return (c, next) => (c.req.method === "HEAD" ? withLength(c, next) : next());
}

async function withLength(c: Context, next: Next): Promise<void> {
  await next();
  const response = c.res;
  if (response.body === null || response.headers.has("content-length")) return;
  if (response.headers.get("content-type")?.startsWith("text/event-stream")) return;
  const length = (await response.clone().arrayBuffer()).byteLength;
  // A copy of the headers: a proxied answer's (a remote actor host's) cannot be changed in place.
  const headers = new Headers(response.headers);
  headers.set("content-length", String(length));
  c.res = new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
