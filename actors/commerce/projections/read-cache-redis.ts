// The Redis ReadCache: Lua scripts over any client with `eval` (@upstash/redis over REST, or tcpRedis over TCP).
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import {
  CacheCounters,
  type CachedEntry,
  checkTtl,
  checkVersion,
  defaultFloorTtlSeconds,
  type ReadCache,
  type ReadCacheStats,
} from "./read-cache.ts";
import { advanceScript, fillScript, getScript } from "./read-cache-lua.ts";

/**
 * What the cache calls on Redis. `Redis` of @upstash/redis satisfies it, and so does the rate limiter's TCP
 * client, `tcpRedis` (edge/middleware/rate-limit/redis-tcp-commands.ts), which drops the Upstash-only script flag.
 */
export interface ScriptRedis {
  eval(script: string, keys: string[], args: string[]): Promise<unknown>;
}

export interface RedisReadCacheOptions {
  /** Key prefix. Default `edgewise:read:`. */
  prefix?: string;
  /** Default 3600. */
  floorTtlSeconds?: number;
  /** How long one Redis call may take before it counts as failed. Default 500 ms. */
  timeoutMs?: number;
  /** After a failure, `get` and `fill` skip Redis for this long (counted as errors). Default 1000 ms. */
  cooldownMs?: number;
  /** Told about every failure: for logs or metrics. Must not throw. */
  report?: (error: unknown) => void;
  clock?: Clock;
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

/** `<version>:<json>`, as a string (or bytes, from a client that returns them). */
function decode(reply: unknown): CachedEntry | undefined {
  const text = reply instanceof Uint8Array ? new TextDecoder().decode(reply) : reply;
  if (typeof text !== "string") return undefined;
  const colon = text.indexOf(":");
  const version = Number(text.slice(0, colon));
  if (colon < 1 || !Number.isSafeInteger(version)) return undefined;
  try {
    return { version, value: JSON.parse(text.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

export class RedisReadCache implements ReadCache {
  private readonly counters = new CacheCounters();
  private readonly prefix: string;
  private readonly floorTtlMs: number;
  private readonly timeoutMs: number;
  private readonly cooldownMs: number;
  private readonly clock: Clock;
  private coolingUntil = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly redis: ScriptRedis,
    private readonly options: RedisReadCacheOptions = {},
  ) {
    this.prefix = options.prefix ?? "edgewise:read:";
    this.floorTtlMs = Math.ceil((options.floorTtlSeconds ?? defaultFloorTtlSeconds) * 1000);
    this.timeoutMs = options.timeoutMs ?? 500;
    this.cooldownMs = options.cooldownMs ?? 1000;
    this.clock = options.clock ?? systemClock;
    if (!(this.timeoutMs > 0))
      throw new EdgewiseError("config.invalid", "RedisReadCache: timeoutMs must be > 0");
  }

  async get(key: string): Promise<CachedEntry | undefined> {
    if (this.cooling()) {
      this.counters.errors++;
      throw new EdgewiseError("unavailable", "the read cache is failing; skipped", {
        status: 503,
        public: true,
      });
    }
    const entry = decode(await this.call(getScript, key, []));
    if (entry) this.counters.hits++;
    else this.counters.misses++;
    return entry;
  }

  async fill(key: string, version: number, value: unknown, ttlSeconds: number): Promise<void> {
    checkVersion(version);
    checkTtl(ttlSeconds);
    const json = JSON.stringify(value);
    if (json === undefined || this.cooling()) return;
    const ttlMs = Math.ceil(ttlSeconds * 1000);
    await this.call(fillScript, key, [
      String(version),
      `${version}:${json}`,
      String(ttlMs),
      String(Math.max(this.floorTtlMs, ttlMs)),
    ]);
  }

  /** Always tries Redis, even while cooling down: the cache consumer must learn of a failure, and retry. */
  async advance(key: string, version: number): Promise<void> {
    checkVersion(version);
    await this.call(advanceScript, key, [String(version), String(this.floorTtlMs)]);
  }

  stats(): ReadCacheStats {
    return this.counters.snapshot();
  }

  /** Monotonic: in wall time, a clock stepped back an hour after a failure kept the cache skipped for the hour. */
  private cooling(): boolean {
    return this.clock.monotonic() < this.coolingUntil;
  }

  private async call(script: string, key: string, args: string[]): Promise<unknown> {
    const valueKey = `${this.prefix}{${key}}`;
    try {
      // `eval` may throw synchronously as well as reject; both land in the catch.
      return await withDeadline(
        this.redis.eval(script, [valueKey, `${valueKey}:floor`], args),
        this.timeoutMs,
      );
    } catch (error) {
      this.counters.errors++;
      this.coolingUntil = this.clock.monotonic() + this.cooldownMs;
      this.options.report?.(error);
      throw new EdgewiseError("unavailable", "the read cache failed", {
        status: 503,
        public: true,
        cause: error,
      });
    }
  }
}
