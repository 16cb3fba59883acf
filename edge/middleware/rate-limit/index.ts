// rateLimit(): spends one request of the caller's budget per route class, and says so in RateLimit-* headers.
import type { Context, MiddlewareHandler } from "hono";
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";
import { formatIp, parseIp } from "../../../shared/net/ip.ts";
import { byMethod, type Classify } from "./classify.ts";
import type { RateLimitDecision, RateLimiter } from "./port.ts";

export interface RateLimitOptions {
  /** The limiter for a route class; asked once per class, then kept. */
  limiterFor: (routeClass: string) => RateLimiter;
  /** The route class of a request. Default `byMethod` (`read` / `write`); see `byRoute` for per-route classes. */
  classify?: Classify;
  /** Paths never limited: exact, or a prefix written `/prefix/*`. */
  exempt?: readonly string[];
  /**
   * Anonymous IPv6 callers are keyed by this prefix of their address, since one subscriber usually holds a whole
   * /64 and could otherwise rotate through it. 128 keys each address. Default 64.
   */
  ipv6PrefixBits?: number;
  clock?: Clock;
  /** Observes every decision with its route class (metrics). Must not throw. */
  onDecision?: (decision: RateLimitDecision, routeClass: string) => void;
  /** Told of each 429, before it is thrown (security events). Must return at once and not throw. */
  onDenied?: (denial: { subject: string; routeClass: string }, c: Context<GatewayEnv>) => void;
}

/** Health checks and the broker's signed deliveries (a 429 there would only make QStash retry). */
export const defaultExempt = ["/healthz", "/readyz", "/_edgewise/*"] as const;

function exemptMatcher(patterns: readonly string[]): (path: string) => boolean {
  const exact = new Set(patterns.filter((pattern) => !pattern.endsWith("/*")));
  const prefixes = patterns
    .filter((pattern) => pattern.endsWith("/*"))
    .map((pattern) => pattern.slice(0, -1));
  return (path) =>
    exact.has(path) || prefixes.some((prefix) => path.startsWith(prefix) || `${path}/` === prefix);
}

/** The anonymous key for an address: IPv4 as is, IPv6 cut to its network prefix (`2001:db8:1:2::/64`). */
export function ipKey(address: string, ipv6PrefixBits = 64): string {
  const ip = parseIp(address);
  if (!ip || ip.version === 4 || ipv6PrefixBits >= 128) return ip ? formatIp(ip) : address;
  const bytes = ip.bytes.slice();
  for (let bit = ipv6PrefixBits; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${formatIp({ version: 6, bytes })}/${ipv6PrefixBits}`;
}

/**
 * The rate limit middleware, with `refusals`: the auth middleware's hooks that charge refused credentials to the
 * caller's address (see `RefusalLimit`).
 */
export type RateLimitMiddleware = MiddlewareHandler<GatewayEnv> & { refusals: RefusalLimit };

/**
 * Refused credentials are charged to the caller's address, so guessing keys or tokens is rate limited even though
 * authentication answers before the rate limit runs: past the budget, a refused credential gets 429. Once an
 * address has spent its budget, its API keys are refused with 429 before they are looked up (no load on the key
 * store) until the window resets, on this node; a good API key from that address waits for the reset too, as
 * with any lockout. JWTs are checked in memory and are never held up.
 */
export interface RefusalLimit {
  /** Throws 429 when the caller's address is locked out after too many refused credentials. */
  check(c: Context<GatewayEnv>): void;
  /** Spends one request of the address's refusal budget; throws 429 when that was the last. */
  charge(c: Context<GatewayEnv>): Promise<void>;
}

/** Addresses locked out at once, at most; the oldest lockout is forgotten first (the limiter still counts). */
const maxLockouts = 10_000;

export function rateLimit(options: RateLimitOptions): RateLimitMiddleware {
  const { limiterFor, classify, exempt, ipv6PrefixBits, clock, onDecision } = {
    classify: byMethod,
    exempt: defaultExempt,
    ipv6PrefixBits: 64,
    clock: systemClock,
    ...options,
  };
  const isExempt = exemptMatcher(exempt);
  const limiters = new Map<string, RateLimiter>();
  const limiterOf = (routeClass: string) => {
    let limiter = limiters.get(routeClass);
    if (!limiter) {
      limiter = limiterFor(routeClass);
      limiters.set(routeClass, limiter);
    }
    return limiter;
  };
  const addressOf = (c: Context<GatewayEnv>) => `ip:${ipKey(c.get("clientIp") || "unknown", ipv6PrefixBits)}`;

  /** Counts one request for `subject`; throws 429 or 503, else returns the RateLimit-* headers to send. */
  async function spend(
    c: Context<GatewayEnv>,
    key: string,
    subject: string,
    routeClass: string,
  ): Promise<[string, string][]> {
    const decision = await limiterOf(routeClass).limit(key);
    onDecision?.(decision, routeClass);
    const resetSeconds = Math.max(0, Math.ceil((decision.reset - clock.now()) / 1000));
    const retryAfter = retryAfterUntil(decision.reset);

    if (decision.reason === "unavailable") {
      // No RateLimit-* here: nothing was counted, and a limit of 0 would tell a client something false.
      c.header("Retry-After", retryAfter);
      throw new EdgewiseError("unavailable", "rate limiting is unavailable; retry shortly", {
        status: 503,
        public: true,
      });
    }
    const headers: [string, string][] = [
      ["RateLimit-Limit", String(decision.limit)],
      ["RateLimit-Remaining", String(Math.max(0, decision.remaining))],
      ["RateLimit-Reset", String(resetSeconds)],
    ];
    if (!decision.success) {
      options.onDenied?.({ subject, routeClass }, c);
      // Prepared on the context: the error handler's 429 picks them up.
      for (const [name, value] of headers) c.header(name, value);
      throw limited(c, retryAfter);
    }
    return headers;
  }

  /** Whole seconds for `ms`, at least 1: what `Retry-After` says. */
  const retryAfterIn = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));
  /** The same until `reset`, a limiter's wall time (it may share its windows with other nodes, through Redis). */
  const retryAfterUntil = (reset: number) => retryAfterIn(reset - clock.now());
  const limited = (c: Context<GatewayEnv>, retryAfter: string) => {
    c.header("Retry-After", retryAfter);
    return new EdgewiseError("rate_limited", `rate limit exceeded; retry in ${retryAfter} s`, {
      status: 429,
      public: true,
    });
  };
  /** A refused credential's 429 says what any 429 says: the budget, none left, and when it comes back. */
  const refusedOver = (c: Context<GatewayEnv>, limit: number, resetInMs: number) => {
    const retryAfter = retryAfterIn(resetInMs);
    c.header("RateLimit-Limit", String(limit));
    c.header("RateLimit-Remaining", "0");
    c.header("RateLimit-Reset", retryAfter);
    return limited(c, retryAfter);
  };

  /**
   * `until` is monotonic: the limiter's reset is wall time, and a lockout kept in wall time outlived its window by as
   * long as the wall clock was stepped back (an hour's step locked an address's API keys out for the hour).
   */
  const lockouts = new Map<string, { until: number; limit: number }>();
  const refusals: RefusalLimit = {
    check(c) {
      if (lockouts.size === 0 || isExempt(c.req.path)) return;
      const address = addressOf(c);
      const lockout = lockouts.get(address);
      if (lockout === undefined) return;
      const left = lockout.until - clock.monotonic();
      if (left <= 0) {
        lockouts.delete(address);
        return;
      }
      throw refusedOver(c, lockout.limit, left);
    },
    async charge(c) {
      if (isExempt(c.req.path)) return;
      const address = addressOf(c);
      const routeClass = classify(c);
      const decision = await limiterOf(routeClass).limit(`${routeClass}:refused:${address}`);
      onDecision?.(decision, routeClass);
      // A limiter that cannot count ("unavailable") leaves the 401 as it is: the credential was refused anyway.
      if (decision.success || decision.reason === "unavailable") return;
      // No onDenied here: the refusal was already reported (as an auth failure) by the auth middleware.
      if (lockouts.size >= maxLockouts) lockouts.delete(lockouts.keys().next().value as string);
      const resetInMs = decision.reset - clock.now();
      lockouts.set(address, { until: clock.monotonic() + resetInMs, limit: decision.limit });
      throw refusedOver(c, decision.limit, resetInMs);
    },
  };

  const middleware: MiddlewareHandler<GatewayEnv> = async function rateLimitMiddleware(c, next) {
    if (isExempt(c.req.path)) return next();
    const routeClass = classify(c);
    const principal = c.get("principal");
    const subject = principal ? `sub:${principal.sub}` : addressOf(c);
    const headers = await spend(c, `${routeClass}:${subject}`, subject, routeClass);
    await next();
    // Written on the finished response (a route's error response too: Hono's compose has put it on `c.res`).
    // Setting them before `next()` would make every response copy a prepared-header list. A 101 upgrade's
    // headers are immutable.
    if (c.res.status !== 101) {
      const target = c.res.headers;
      for (const [name, value] of headers) target.set(name, value);
    }
  };
  return Object.assign(middleware, { refusals });
}

export { byMethod, byRoute, type Classify } from "./classify.ts";
export { type ConfiguredLimiterOptions, configuredLimiter } from "./configured.ts";
export { type MemoryLimiterOptions, memoryLimiter } from "./memory.ts";
export type { RateLimitDecision, RateLimiter, RateLimitReason } from "./port.ts";
export { type ResilientLimiterOptions, resilientLimiter } from "./resilient.ts";
export { type RatelimitRedis, type UpstashLimiterOptions, upstashLimiter } from "./upstash.ts";
