// body-limit: refuses a body over the limit (413) and a body that is not JSON where JSON is expected (415).
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";

export interface BodyLimitOptions {
  maxBytes?: number;
  /** Refuse a body not declared as JSON (415). Off for signed internal endpoints that parse it themselves. */
  requireJson?: boolean;
}

const withBody = new Set(["POST", "PUT", "PATCH"]);

export function bodyLimit(options: BodyLimitOptions = {}) {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const requireJson = options.requireJson ?? true;
  // Hono's limit counts streamed bytes too, so a lying Content-Length cannot get past it.
  const limit = honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new EdgewiseError("request.too_large", `the body must be at most ${maxBytes} bytes`);
    },
  });
  return createMiddleware<GatewayEnv>(async (c, next) => {
    if (!withBody.has(c.req.method)) return next();
    if (!requireJson) return limit(c, next);
    // Everything the gateway takes is JSON (the broker's deliveries are CloudEvents JSON). A body must say so:
    // without the header, Hono's JSON validator would see `{}` and defaults would apply silently.
    const type = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
    const hasBody = c.req.header("content-length") !== "0" && c.req.raw.body !== null;
    if (hasBody && (type === undefined || (type !== "application/json" && !type.endsWith("+json")))) {
      throw new EdgewiseError("request.unsupported_media_type", "send the body as application/json");
    }
    return limit(c, next);
  });
}
