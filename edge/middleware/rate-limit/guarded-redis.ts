// The node's one Redis client behind the `redis` breaker: the rate limiter and the read cache both go through it.
import type { Dependencies } from "../../../shared/resilience/index.ts";
import type { RatelimitRedis } from "./upstash.ts";

/**
 * While the breaker is open every call fails at once with `breaker.open`: the rate limiter falls back to its
 * local count (or refuses, as configured) and the read cache is bypassed, without waiting on a dead Redis.
 */
export function guardedRedis<R extends RatelimitRedis>(redis: R, dependencies: Dependencies): R {
  const call = <T>(fn: () => Promise<T>) => dependencies.call("redis", fn);
  const guarded: RatelimitRedis = {
    eval: ((...args: Parameters<R["eval"]>) =>
      call(() => (redis.eval as (...a: unknown[]) => Promise<unknown>)(...args))) as R["eval"],
    evalsha: ((...args: Parameters<R["evalsha"]>) =>
      call(() => (redis.evalsha as (...a: unknown[]) => Promise<unknown>)(...args))) as R["evalsha"],
    get: ((...args: Parameters<R["get"]>) =>
      call(() => (redis.get as (...a: unknown[]) => Promise<unknown>)(...args))) as R["get"],
    set: ((...args: Parameters<R["set"]>) =>
      call(() => (redis.set as (...a: unknown[]) => Promise<unknown>)(...args))) as R["set"],
  };
  return Object.assign(Object.create(redis) as R, guarded);
}
