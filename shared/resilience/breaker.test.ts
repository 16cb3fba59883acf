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
