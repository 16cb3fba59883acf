// body-limit: refuses a body over the limit (413), streamed or declared. Whether it is JSON is validation's call.
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";

export interface BodyLimitOptions {
  maxBytes?: number;
}

const withBody = new Set(["POST", "PUT", "PATCH"]);

/**
 * Size only: it runs before authentication, so a body's content type is checked later, by the route's
 * `validate("json", …)` (415), after the caller was told 401 or 403 if that is what applies.
 */
export function bodyLimit(options: BodyLimitOptions = {}) {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  // Hono's limit counts streamed bytes too, so a lying Content-Length cannot get past it.
  const limit = honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new EdgewiseError("request.too_large", `the body must be at most ${maxBytes} bytes`);
    },
  });
  return createMiddleware<GatewayEnv>(async (c, next) =>
    withBody.has(c.req.method) ? limit(c, next) : next(),
  );
}
