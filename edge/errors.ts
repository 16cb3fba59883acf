// The gateway's one error handler: every failure becomes problem+json, with the headers its status calls for.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { EdgewiseError, problemContentType, toEdgewiseError, toProblem } from "../shared/errors/index.ts";
import { createLogger, errorFields, type Logger } from "../shared/telemetry/log/index.ts";
import type { GatewayEnv } from "./env.ts";

export interface ErrorHandlerOptions {
  /**
   * Where unexpected (5xx) failures are reported; the client never sees their detail. Default: the request's
   * logger at error, with the error's cause chain.
   */
  report?: (error: unknown, c: Context<GatewayEnv>) => void;
  /** For requests without `c.var.log` (request-id did not run). Default: the console at warn. */
  logger?: Logger;
}

/** 5xx codes that are the system protecting itself, not a bug: logged at warn, not reported as failures. */
const expectedUnderStress: ReadonlySet<string> = new Set(["timeout", "unavailable", "breaker.open"]);
/** Shed load, refused before anything was written: one warning per episode comes from the admission's owner (deploy/node-load.ts). */
const shedQuietly: ReadonlySet<string> = new Set(["overloaded"]);

export function errorHandler(options: ErrorHandlerOptions = {}) {
  const fallback = options.logger ?? createLogger({ level: "warn" });
  const report =
    options.report ??
    ((error: unknown, c: Context<GatewayEnv>) =>
      (c.var.log ?? fallback).error("request failed", failureFields(c, error)));
  return (thrown: Error, c: Context<GatewayEnv>): Response => {
    const error = fromHttpException(thrown) ?? toEdgewiseError(thrown);
    const log = c.var.log ?? fallback;
    // Timeouts, shed load and a dependency's open breaker are expected under stress: a warning each (the breaker's
    // own transitions say why). A 4xx is the caller's: debug only.
    if (shedQuietly.has(error.code)) log.debug("request shed", { status: error.status, code: error.code });
    else if (error.status >= 500 && !expectedUnderStress.has(error.code)) report(thrown, c);
    else if (error.status >= 500) log.warn("request failed", failureFields(c, thrown));
    else if (log.isEnabled("debug")) {
      log.debug("request refused", {
        status: error.status,
        code: error.code,
        ...(error.public ? { detail: error.message } : {}),
      });
    }
    const problem = toProblem(error, instanceOf(c.req.url));
    const headers = new Headers({ "content-type": problemContentType });
    if (c.var.requestId) headers.set("x-request-id", c.var.requestId);
    if (problem.status === 401 && !c.res.headers.get("www-authenticate"))
      headers.set("www-authenticate", "Bearer");
    const retryAfter = error.meta?.retryAfterSeconds;
    if (typeof retryAfter === "number")
      headers.set("retry-after", String(Math.max(0, Math.ceil(retryAfter))));
    // Headers an earlier middleware set for this response (RateLimit-*, WWW-Authenticate) stay.
    for (const [name, value] of c.res.headers) if (!headers.has(name)) headers.set(name, value);
    return new Response(JSON.stringify(problem), { status: problem.status, headers });
  };
}

/**
 * The path as the client sent it: `instance` is a URI reference, so percent-encoding stays (a decoded `%00` or `%2F`
 * would not be one, or would name another path). Built only for an error answer. None when the request target is
 * no URL: Bun hands `CONNECT host:port` over as the URL `host:port`, and a throw here left the request to the
 * runtime's own error answer.
 */
function instanceOf(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

/** Hono's own 4xx (malformed JSON in a validator, for one) carry generic, safe messages. */
function fromHttpException(thrown: unknown): EdgewiseError | undefined {
  if (!(thrown instanceof HTTPException)) return undefined;
  if (thrown.status === 413)
    return new EdgewiseError("request.too_large", thrown.message || "body too large");
  if (thrown.status < 500) {
    return new EdgewiseError("request.invalid", thrown.message || "invalid request", {
      status: thrown.status,
    });
  }
  return new EdgewiseError("internal", thrown.message);
}

/** What a failure's log line carries: where it happened and the error with its causes (redacted by the logger). */
function failureFields(c: Context<GatewayEnv>, error: unknown): Record<string, unknown> {
  return { method: c.req.method, path: c.req.path, error: errorFields(error) };
}
