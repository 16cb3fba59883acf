// Admission control: refuses requests that start new work (503 `overloaded`, Retry-After) while the queues are behind.
import type { Context, MiddlewareHandler } from "hono";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";

export interface AdmissionOptions {
  /** How far behind the queues are, in ms: the wait of the oldest message due and not yet delivered (0 when none). */
  behindMs: () => number;
  /** Above this, new work is refused. */
  maxBehindMs: number;
  /** The requests that start new work (e.g. `POST /v1/orders`); every other request passes. */
  startsWork: (method: string, path: string) => boolean;
  /**
   * True for a request that repeats work already accepted (an order placed before with this Idempotency-Key): it
   * writes nothing new, so it passes and gets its answer as at any other time. Asked only of a request about to be
   * refused; false or a failure refuses it.
   */
  repeatsAccepted?: (c: Context<GatewayEnv>) => Promise<boolean>;
  /** Called for each refusal (a metric). */
  onRefused?: () => void;
  /** The jitter's source, in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/** Retry-After's base, in whole seconds: about the time the queues need to catch up, from 1 to 30. */
export const retryAfterSeconds = (behindMs: number, maxBehindMs: number) =>
  Math.min(30, Math.max(1, Math.ceil((behindMs - maxBehindMs / 2) / 1000)));

/**
 * Retry-After as sent: the base plus up to half as much again (at least 1 s), in whole seconds, so 1 to 45.
 * A burst refused together was told one number and came back as the same burst, to be refused again; jitter spreads
 * it. Never below the base: the queues need that long, and an earlier retry is only refused again.
 */
export const jitteredRetryAfter = (base: number, random: () => number = Math.random) =>
  base + Math.floor(random() * (Math.max(1, Math.ceil(base / 2)) + 1));

/**
 * Mounted after authentication and the rate limit and before the routes, so a refusal comes before anything is
 * validated or written: the client may send the same request again (same Idempotency-Key) once Retry-After passes.
 * A request that repeats accepted work (`repeatsAccepted`) is not new work: it passes even while refusing.
 */
export function admission(options: AdmissionOptions): MiddlewareHandler<GatewayEnv> {
  const { behindMs, maxBehindMs, startsWork, repeatsAccepted, onRefused, random } = options;
  const repeats = async (c: Context<GatewayEnv>) =>
    repeatsAccepted ? repeatsAccepted(c).catch(() => false) : false;
  return async (c, next) => {
    if (startsWork(c.req.method, c.req.path)) {
      const behind = behindMs();
      if (behind > maxBehindMs && !(await repeats(c))) {
        onRefused?.();
        throw new EdgewiseError(
          "overloaded",
          `the node's queues are ${Math.round(behind / 100) / 10} s behind (the limit is ${maxBehindMs / 1000} s); nothing was written, retry later`,
          {
            status: 503,
            public: true,
            meta: { retryAfterSeconds: jitteredRetryAfter(retryAfterSeconds(behind, maxBehindMs), random) },
          },
        );
      }
    }
    await next();
  };
}
