// timeout: one AbortSignal per request that fires when the client leaves or the time is up; work observes it.
import { createMiddleware } from "hono/factory";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";

export interface TimeoutOptions {
  ms?: number;
}

/**
 * Work that takes `c.var.signal` (actor asks, fetches to a remote host) is really aborted, not just
 * abandoned behind a Promise.race: a queued ask is dropped from the mailbox, a fetch is cancelled.
 */
export function timeout(options: TimeoutOptions = {}) {
  const ms = options.ms ?? 10_000;
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const deadline = AbortSignal.timeout(ms);
    c.set("signal", AbortSignal.any([c.req.raw.signal, deadline]));
    await next();
    if (deadline.aborted && c.error === undefined && c.res.status < 400) {
      // The handler ignored the signal and finished late: the client was told nothing else, so keep its answer.
      return;
    }
    if (deadline.aborted && c.error instanceof EdgewiseError && c.error.code === "timeout") {
      c.error = new EdgewiseError("timeout", `the request took longer than ${ms} ms`);
    }
  });
}
