// body-limit: refuses a body over the limit (413), streamed or declared. Whether it is JSON is validation's call.
import { createMiddleware } from "hono/factory";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";

export interface BodyLimitOptions {
  maxBytes?: number;
}

const withBody = new Set(["POST", "PUT", "PATCH"]);
/** How much of a refused streamed body is read and dropped, so that its connection can serve the next request. */
const drainBytes = 1024 * 1024;
const drainMs = 250;

/**
 * Size only: it runs before authentication, so a body's content type is checked later, by the route's
 * `validate("json", …)` (415), after the caller was told 401 or 403 if that is what applies.
 *
 * A declared Content-Length over the limit is refused unread. A streamed body (chunked) is read up to the limit and
 * kept for the route. Why not hono/body-limit, which does the same: on going over, it leaves the rest of the stream
 * unread, and under workerd the client's next request on that connection then got no answer (cancelling the stream
 * did not help either). So the rest is read and dropped, up to `drainBytes` more and for up to `drainMs`; past
 * either, or for a body that stalls (a chunk declared huge and never sent), the stream is cancelled and the 413 goes.
 */
export function bodyLimit(options: BodyLimitOptions = {}) {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const tooLarge = () => new EdgewiseError("request.too_large", `the body must be at most ${maxBytes} bytes`);
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const request = c.req.raw;
    if (!withBody.has(c.req.method) || !request.body) return next();
    const declared = request.headers.get("content-length");
    if (declared !== null && !request.headers.has("transfer-encoding")) {
      if (Number.parseInt(declared, 10) > maxBytes) throw tooLarge();
      return next();
    }
    const reader = request.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await drain(reader, drainBytes, drainMs);
        throw tooLarge();
      }
      chunks.push(value);
    }
    const body = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    c.req.raw = new Request(request, { body });
    return next();
  });
}

/** Reads the rest and drops it, up to `limit` bytes and `ms` milliseconds; past either, cancels the stream. */
async function drain(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
  ms: number,
): Promise<void> {
  // Cancelling settles a read still waiting (done), so a stalled body ends the loop at the deadline.
  const deadline = setTimeout(() => void reader.cancel().catch(() => {}), ms);
  let dropped = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      dropped += value.byteLength;
      if (dropped > limit) break;
    }
    await reader.cancel().catch(() => {});
  } catch {
    // The stream failed or was cancelled: nothing more to read.
  } finally {
    clearTimeout(deadline);
  }
}
