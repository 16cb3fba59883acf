// resilientLimiter(): a primary that throws, rejects or hangs → fallback ("open") or unavailable ("closed").
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../../shared/clock/index.ts";
import { memoryLimiter } from "./memory.ts";
import type { RateLimitDecision, RateLimiter } from "./port.ts";
import { resilientLimiter } from "./resilient.ts";

const rejecting: RateLimiter = { limit: () => Promise.reject(new Error("ECONNREFUSED")) };
const throwing: RateLimiter = {
  limit: () => {
    throw new Error("synchronous");
  },
};
const hanging: RateLimiter = { limit: () => new Promise<RateLimitDecision>(() => {}) };
const working: RateLimiter = {
  limit: async () => ({ success: true, limit: 9, remaining: 8, reset: 1, reason: "allowed" }),
};

describe("resilientLimiter", () => {
  test("a working primary decides", async () => {
    const limiter = resilientLimiter(working, { fallback: rejecting, onFailure: "closed" });
    expect(await limiter.limit("a")).toEqual({
      success: true,
      limit: 9,
      remaining: 8,
      reset: 1,
      reason: "allowed",
    });
  });

  for (const [name, primary] of [
    ["rejects", rejecting],
    ["throws", throwing],
    ["hangs", hanging],
  ] as const) {
    test(`open: a primary that ${name} hands over to the fallback, which still limits`, async () => {
      const errors: unknown[] = [];
      const limiter = resilientLimiter(primary, {
        fallback: memoryLimiter({ limit: 2, windowMs: 60_000, clock: new ManualClock() }),
        onFailure: "open",
        timeoutMs: 50,
        report: (error) => errors.push(error),
      });
      const started = performance.now();
      const decisions = [await limiter.limit("a"), await limiter.limit("a"), await limiter.limit("a")];
      // A third of what three waits for the 1 s default timeout take (a timeoutMs left unused fails), with 850 ms
      // over three of the 50 ms one for a loaded machine's stalls.
      expect(performance.now() - started).toBeLessThan(3 * 50 + 850);
      expect(decisions.map((d) => [d.success, d.reason])).toEqual([
        [true, "fallback"],
        [true, "fallback"],
        [false, "fallback"],
      ]);
      expect(decisions[0]!.limit).toBe(2);
      expect(errors).toHaveLength(3);
    });

    test(`closed: a primary that ${name} means unavailable, within the timeout`, async () => {
      const clock = new ManualClock(1_000_000);
      const limiter = resilientLimiter(primary, {
        fallback: working,
        onFailure: "closed",
        timeoutMs: 50,
        retryAfterMs: 2_000,
        clock,
      });
      const started = performance.now();
      const decision = await limiter.limit("a");
      // Below the 1 s default timeout (a timeoutMs left unused fails), with 650 ms over the 50 ms one for stalls.
      expect(performance.now() - started).toBeLessThan(50 + 650);
      expect(decision).toEqual({
        success: false,
        limit: 0,
        remaining: 0,
        reset: 1_002_000,
        reason: "unavailable",
      });
    });
  }
});
