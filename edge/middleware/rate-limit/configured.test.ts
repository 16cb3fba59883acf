// configuredLimiter(): memory without Redis; Redis behind the failure policy with it.
import { expect, test } from "bun:test";
import { ManualClock } from "../../../shared/clock/index.ts";
import { configuredLimiter } from "./configured.ts";
import type { RatelimitRedis } from "./upstash.ts";

const refused = () => Promise.reject(new Error("ECONNREFUSED"));
const brokenRedis: RatelimitRedis = { evalsha: refused, eval: refused, get: refused, set: refused };
const rate = { limit: 2, windowMs: 60_000 };

test("without Redis: the memory limiter", async () => {
  const limiter = configuredLimiter({ rate, onRedisFailure: "closed", clock: new ManualClock() });
  const reasons = [];
  for (let i = 0; i < 3; i++) reasons.push((await limiter.limit("a")).reason);
  expect(reasons).toEqual(["allowed", "allowed", "limited"]);
});

test("with a failing Redis: the configured policy", async () => {
  const open = configuredLimiter({ rate, onRedisFailure: "open", redis: brokenRedis, report: () => {} });
  expect((await open.limit("a")).reason).toBe("fallback");
  const closed = configuredLimiter({ rate, onRedisFailure: "closed", redis: brokenRedis });
  expect((await closed.limit("a")).reason).toBe("unavailable");
});
