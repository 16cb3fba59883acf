// memoryLimiter(): the fixed-window bound, rollover, and the memory bound.
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../../shared/clock/index.ts";
import { memoryLimiter } from "./memory.ts";

const windowMs = 10_000;

describe("memoryLimiter", () => {
  test("admits exactly `limit` per window, then denies without counting", async () => {
    const clock = new ManualClock(5 * windowMs + 2_500);
    const limiter = memoryLimiter({ limit: 3, windowMs, clock });
    const decisions = [];
    for (let i = 0; i < 6; i++) decisions.push(await limiter.limit("a"));
    expect(decisions.map((d) => d.success)).toEqual([true, true, true, false, false, false]);
    expect(decisions.map((d) => d.remaining)).toEqual([2, 1, 0, 0, 0, 0]);
    expect(decisions.map((d) => d.reason)).toEqual([
      "allowed",
      "allowed",
      "allowed",
      "limited",
      "limited",
      "limited",
    ]);
    for (const d of decisions) {
      expect(d.limit).toBe(3);
      expect(d.reset).toBe(6 * windowMs); // aligned to the epoch, like @upstash/ratelimit's fixedWindow
    }
  });

  test("concurrent calls never exceed the bound", async () => {
    const limiter = memoryLimiter({ limit: 50, windowMs, clock: new ManualClock() });
    const results = await Promise.all(Array.from({ length: 200 }, () => limiter.limit("burst")));
    expect(results.filter((r) => r.success)).toHaveLength(50);
  });

  test("a new window starts afresh, at the boundary and not before", async () => {
    const clock = new ManualClock(7 * windowMs);
    const limiter = memoryLimiter({ limit: 1, windowMs, clock });
    expect((await limiter.limit("a")).success).toBe(true);
    clock.advance(windowMs - 1);
    expect((await limiter.limit("a")).success).toBe(false);
    clock.advance(1);
    const next = await limiter.limit("a");
    expect(next.success).toBe(true);
    expect(next.reset).toBe(9 * windowMs);
  });

  test("identifiers are independent", async () => {
    const limiter = memoryLimiter({ limit: 1, windowMs, clock: new ManualClock() });
    expect((await limiter.limit("a")).success).toBe(true);
    expect((await limiter.limit("b")).success).toBe(true);
    expect((await limiter.limit("a")).success).toBe(false);
  });

  test("memory is bounded: past maxKeys the least recently seen identifier is forgotten", async () => {
    const limiter = memoryLimiter({ limit: 1, windowMs, clock: new ManualClock(), maxKeys: 2 });
    await limiter.limit("a");
    await limiter.limit("b");
    expect((await limiter.limit("a")).success).toBe(false); // touches a: b is now the oldest
    await limiter.limit("c"); // evicts b
    expect((await limiter.limit("a")).success).toBe(false);
    expect((await limiter.limit("b")).success).toBe(true); // forgotten, so a fresh allowance (evicts c)
    expect((await limiter.limit("a")).success).toBe(false);
  });

  test("options are checked", () => {
    expect(() => memoryLimiter({ limit: 0, windowMs })).toThrow(/limit/);
    expect(() => memoryLimiter({ limit: 1, windowMs: 0.5 })).toThrow(/windowMs/);
    expect(() => memoryLimiter({ limit: 1, windowMs, maxKeys: 0 })).toThrow(/maxKeys/);
  });
});
