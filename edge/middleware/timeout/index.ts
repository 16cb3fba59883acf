// timeout: one AbortSignal per request that fires when the request's time is up; work, and the body's read, observe it.
import { createMiddleware } from "hono/factory";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";
import { boundBody } from "./body.ts";

export interface TimeoutOptions {
  ms?: number;
}

/** Requests that start within one slot share a deadline signal: a timer and a signal per request cost ~10%. */
const slotMs = 50;

/**
 * Work that takes `c.var.signal` (actor asks, fetches to a remote host) is really aborted, not just
 * abandoned behind a Promise.race: a queued ask is dropped from the mailbox, a fetch is cancelled. The
 * deadline falls between `ms` and `ms + 50` after the request started.
 *
 * The body must arrive by the same deadline (see `boundBody`): a body still arriving then is answered 504 with
 * `Connection: close`, since the rest of it would be read as the connection's next request. Mount this before
 * anything reads a body (the body limits) for that to hold.
 */
export function timeout(options: TimeoutOptions = {}) {
  const ms = options.ms ?? 10_000;
  // workerd ties a timer to the request that created it and refuses its use from another request.
  const perRequest =
    (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === "Cloudflare-Workers";
  let slot = -1;
  let shared: AbortSignal | undefined;
  const deadlineFor = (now: number) => {
    if (perRequest) return AbortSignal.timeout(ms);
    const current = Math.floor(now / slotMs);
    if (current !== slot || !shared) {
      slot = current;
      // The slot's deadline counts from its end, so no request in it gets less than `ms`.
      shared = AbortSignal.timeout(ms + (slotMs - (now % slotMs)));
    }
    return shared;
  };
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const deadline = deadlineFor(Date.now());
    c.set("signal", deadline);
    const body = boundBody(c.req.raw, deadline, ms);
    if (body) c.req.raw = body.request;
    try {
      await next();
    } finally {
      body?.release();
    }
    if (body?.cut) c.header("connection", "close");
    if (deadline.aborted && c.error instanceof EdgewiseError && c.error.code === "timeout") {
      c.error = new EdgewiseError("timeout", `the request took longer than ${ms} ms`);
    }
  });
}
