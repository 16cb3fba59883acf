// The circuit breaker under Bun: every transition (the portable cases workerd and Deno also run), and no timers.
import { afterEach, expect, test } from "bun:test";
import { bunCases } from "../../test/resilience/bun.ts";
import { suites } from "../../test/resilience/cases.ts";
import { ManualClock } from "../clock/index.ts";
import { CircuitBreaker } from "./breaker.ts";

bunCases("breaker: closed", suites["breaker: closed"]);
bunCases("breaker: open and recovery", suites["breaker: open and recovery"]);

const realSetTimeout = globalThis.setTimeout;
const realSetInterval = globalThis.setInterval;
afterEach(() => {
  globalThis.setTimeout = realSetTimeout;
  globalThis.setInterval = realSetInterval;
});

test("the breaker never touches a timer: not at construction, not on a call, not to half-open", async () => {
  const forbidden = (() => {
    throw new Error("timer used");
  }) as unknown as typeof setTimeout;
  globalThis.setTimeout = forbidden;
  globalThis.setInterval = forbidden as unknown as typeof setInterval;
  const clock = new ManualClock();
  const breaker = new CircuitBreaker({ name: "db", clock, consecutiveFailures: 1, resetTimeoutMs: 1_000 });
  await expect(breaker.execute(async () => Promise.reject(new Error("down")))).rejects.toThrow("down");
  clock.advance(1_000);
  expect(breaker.state).toBe("half-open");
  expect(await breaker.execute(async () => "ok")).toBe("ok");
  expect(breaker.state).toBe("closed");
});

test("a wall clock stepped back an hour does not keep an open breaker open: it half-opens after resetTimeoutMs", async () => {
  const clock = new ManualClock();
  const breaker = new CircuitBreaker({ name: "db", clock, consecutiveFailures: 1, resetTimeoutMs: 5_000 });
  await expect(breaker.execute(async () => Promise.reject(new Error("down")))).rejects.toThrow("down");
  clock.step(-3_600_000);
  clock.advance(4_999);
  await expect(breaker.execute(async () => "refused")).rejects.toMatchObject({ code: "breaker.open" });
  expect(breaker.reopensInMs()).toBe(1);
  // What it shows is wall time, read off the stepped clock.
  expect(breaker.snapshot().halfOpensAt).toBe(clock.now() + 1);
  clock.advance(1);
  expect(await breaker.execute(async () => "ok")).toBe("ok");
  expect(breaker.state).toBe("closed");
});

test("a wall clock stepped forward during a call does not make it slow", async () => {
  const clock = new ManualClock();
  const breaker = new CircuitBreaker({
    name: "db",
    clock,
    slowCallDurationMs: 1_000,
    slowCallRateThreshold: 1,
    minimumCalls: 1,
  });
  await breaker.execute(async () => {
    clock.step(3_600_000);
    clock.advance(10);
    return "ok";
  });
  expect(breaker.callTotals().slow).toBe(0);
  expect(breaker.state).toBe("closed");
});

test("holdOpenUntil holds for the time left then, whatever the wall clock does afterwards", () => {
  const clock = new ManualClock();
  const breaker = new CircuitBreaker({ name: "db", clock });
  breaker.holdOpenUntil(clock.now() + 5_000);
  clock.step(-3_600_000);
  clock.advance(5_000);
  expect(breaker.state).toBe("half-open");
});
