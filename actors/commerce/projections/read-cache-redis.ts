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
  /**
   * How many keys whose advance failed this cache remembers, to apply once Redis answers again. Default 10,000;
   * past it the oldest is forgotten (its event, retried by the queue, and the value's TTL still end the stale read).
   */
  maxPendingAdvances?: number;
  /**
   * How many remembered advances one retry applies, at most, oldest first; the rest wait for the next retry. Default:
   * all. Each is a request to Redis, and on Workers a subrequest of the request the retry runs in (50 on the Free
   * plan): `retriesPerRequest` there.
   */
  retriesPerDrain?: number;
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

/**
 * `retriesPerDrain` on Workers. An isolate may remember 10,000 failed advances after an outage, and each request's
 * background retry applied them all: past 50 that was every subrequest the request had (the Free plan's), its own
 * Redis and queue calls included, and a failure that cooled the cache. A key read or filled before its turn applies
 * its own advance first, so none is served stale meanwhile.
 */
export const retriesPerRequest = 16;

export class RedisReadCache implements ReadCache {
  private readonly counters = new CacheCounters();
  private readonly prefix: string;
  private readonly floorTtlMs: number;
  private readonly timeoutMs: number;
  private readonly cooldownMs: number;
  private readonly clock: Clock;
  private coolingUntil = Number.NEGATIVE_INFINITY;
  /**
   * Advances that failed (Redis down or slow), by key: the highest version. Until one is applied, `get` and `fill`
   * apply it first, and a timer retries them all every `cooldownMs`: a value the advance should have dropped is not
   * served again once Redis answers (on this node at once; on the others once this node's retry gets through),
   * instead of until the queue's next retry of the event (12 s, then 2.5 min) or the value's TTL.
   */
  private readonly pending = new Map<string, number>();
  private readonly maxPending: number;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private draining: Promise<void> | undefined;
  private retrying: Promise<void> | undefined;

  constructor(
    private readonly redis: ScriptRedis,
    private readonly options: RedisReadCacheOptions = {},
  ) {
    this.prefix = options.prefix ?? "edgewise:read:";
    this.floorTtlMs = Math.ceil((options.floorTtlSeconds ?? defaultFloorTtlSeconds) * 1000);
    this.timeoutMs = options.timeoutMs ?? 500;
    this.cooldownMs = options.cooldownMs ?? 1000;
    this.clock = options.clock ?? systemClock;
    this.maxPending = options.maxPendingAdvances ?? 10_000;
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
    // Checked here, not only inside: a read with nothing pending (nearly all) takes no extra await.
    if (this.pending.has(key)) await this.applyPending(key);
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
    if (this.pending.has(key)) await this.applyPending(key);
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
    try {
      await this.call(advanceScript, key, [String(version), String(this.floorTtlMs)]);
    } catch (error) {
      this.remember(key, version);
      throw error;
    }
    if ((this.pending.get(key) ?? -1) <= version) this.pending.delete(key);
  }

  /** How many failed advances wait to be applied. */
  pendingAdvances(): number {
    return this.pending.size;
  }

  /**
   * Applies the failed advances now, where no timer outlives a request (Workers: under `wrangler dev` the retry
   * timer's advance never landed once the request that set it had ended). Resolves when done or stopped at a
   * failure; never rejects.
   */
  retryPending(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    // Not the timer's drain: one started by a request that has ended may never settle there.
    this.retrying ??= this.drain().finally(() => {
      this.retrying = undefined;
    });
    return this.retrying;
  }

  /** Stops retrying the failed advances (they are forgotten). */
  close(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.pending.clear();
  }

  stats(): ReadCacheStats {
    return this.counters.snapshot();
  }

  private remember(key: string, version: number): void {
    const known = this.pending.get(key);
    if (known !== undefined && known >= version) return;
    this.pending.delete(key); // re-inserted last: the oldest failure goes first when full
    this.pending.set(key, version);
    if (this.pending.size > this.maxPending) {
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
    }
    this.scheduleRetry();
  }

  /** Applies `key`'s failed advance, if any, before it is read or filled; throws as `call` does. */
  private async applyPending(key: string): Promise<void> {
    const version = this.pending.get(key);
    if (version === undefined) return;
    await this.call(advanceScript, key, [String(version), String(this.floorTtlMs)]);
    if (this.pending.get(key) === version) this.pending.delete(key);
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.draining ??= this.drain().finally(() => {
        this.draining = undefined;
        if (this.pending.size > 0) this.scheduleRetry();
      });
    }, this.cooldownMs);
    (this.retryTimer as { unref?: () => void }).unref?.();
  }

  /**
   * Applies the failed advances, oldest first, one at a time, `retriesPerDrain` at most; stops at the first failure
   * (the timer, or on Workers the next request, tries again).
   */
  private async drain(): Promise<void> {
    const keys = [...this.pending.keys()];
    for (const key of keys.slice(0, Math.min(keys.length, this.options.retriesPerDrain ?? keys.length))) {
      try {
        await this.applyPending(key);
      } catch {
        return;
      }
    }
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
