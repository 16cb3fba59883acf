// The part of @upstash/redis that @upstash/ratelimit and the read cache call, over any RESP client's send().
import type { Redis } from "@upstash/redis";
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { withoutUpstashOnlyFlags } from "../../../shared/redis/lua-shebang.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { redisRefusal } from "./redis-refusal.ts";
import type { RatelimitRedis } from "./upstash.ts";

export interface TcpRedisOptions {
  /** `redis://[user[:password]@]host[:port][/db]` or `rediss://…`. */
  url: string;
  /** How long one connection attempt may take. Default 1000 ms. */
  connectTimeoutMs?: number;
  /**
   * After a failed connection attempt, calls fail at once for this long instead of each trying again, so an outage
   * costs the fallback nothing rather than a connect per request. Default 1000 ms.
   */
  reconnectBackoffMs?: number;
  /**
   * Commands one connection may have awaiting replies; past it a new command fails at once (503 `unavailable`).
   * Callers stop waiting at their own timeout, but a reply is matched by position, so the client holds every
   * unanswered command until its connection ends. Default 1000.
   */
  maxOutstanding?: number;
  /**
   * A reply awaited longer than this means the connection is stuck (a Redis hung with the connection open): the
   * next command drops it, failing what it held, and goes over a new one. Default 5000 ms.
   */
  replyTimeoutMs?: number;
  /** Only its monotonic time is read: a wall clock stepped back must not stretch the backoff. Default `systemClock`. */
  clock?: Clock;
}

export interface TcpRedis extends RatelimitRedis {
  close(): void;
}

type SetOptions = Parameters<Redis["set"]>[2];

function toArg(value: unknown): string {
  return typeof value === "string"
    ? value
    : typeof value === "object"
      ? JSON.stringify(value)
      : String(value);
}

/** Like @upstash/redis's automatic deserialization: JSON when it parses, the string otherwise. */
function fromReply(reply: unknown): unknown {
  if (typeof reply !== "string") return reply;
  try {
    return JSON.parse(reply);
  } catch {
    return reply;
  }
}

/**
 * evalsha, eval, get and set as @upstash/redis answers them, over `send` (one command, its reply). `sha1` hashes a
 * script as Redis does: EVAL runs the script without its Upstash-only shebang flags, which plain Redis refuses, so
 * Redis holds it under another hash; the alias sends later EVALSHA calls (made with the client's hash) to it.
 */
export function redisCommands(
  send: (command: string, args: string[]) => Promise<unknown>,
  sha1: (text: string) => string,
): RatelimitRedis {
  /** The client's SHA1 of a script → the SHA1 of the script Redis actually holds (flags dropped). */
  const aliases = new Map<string, string>();
  const scriptArgs = (keys: string[], args: unknown[]) => [String(keys.length), ...keys, ...args.map(toArg)];
  return {
    evalsha: async <TArgs extends unknown[], TData = unknown>(sha: string, keys: string[], args: TArgs) =>
      (await send("EVALSHA", [aliases.get(sha) ?? sha, ...scriptArgs(keys, args)])) as TData,

    // Ratelimit calls eval only after EVALSHA said NOSCRIPT; remembering the alias sends later calls back to EVALSHA.
    eval: async <TArgs extends unknown[], TData = unknown>(script: string, keys: string[], args: TArgs) => {
      const runnable = withoutUpstashOnlyFlags(script);
      if (runnable !== script && aliases.size < 64) aliases.set(sha1(script), sha1(runnable));
      return (await send("EVAL", [runnable, ...scriptArgs(keys, args)])) as TData;
    },

    get: async <TData>(key: string) => fromReply(await send("GET", [key])) as TData | null,

    set: async <TData>(key: string, value: TData, opts?: SetOptions) => {
      const args = [key, toArg(value)];
      if (opts?.get) args.push("GET");
      if (opts?.ex !== undefined) args.push("EX", String(opts.ex));
      if (opts?.px !== undefined) args.push("PX", String(opts.px));
      if (opts?.exat !== undefined) args.push("EXAT", String(opts.exat));
      if (opts?.pxat !== undefined) args.push("PXAT", String(opts.pxat));
      if (opts?.keepTtl) args.push("KEEPTTL");
      if (opts?.nx) args.push("NX");
      if (opts?.xx) args.push("XX");
      return fromReply(await send("SET", args)) as "OK" | TData | null;
    },
  } as RatelimitRedis;
}

/**
 * Reconnection is ours, not the client's: with a client's offline queue a command waits out every reconnect
 * attempt (seconds). Here commands fail fast while Redis is away, and the first call after the backoff reconnects;
 * the limiter's timeout bounds a Redis that accepts but never answers. `connect` makes one attempt.
 */
/** A call that found Redis away (503); `reason` names a cause /readyz shows instead of "unreachable". */
export const redisUnavailable = (message: string, cause?: unknown, reason?: string): EdgewiseError =>
  new EdgewiseError("unavailable", message, {
    status: 503,
    public: true,
    ...(cause ? { cause } : {}),
    ...(reason ? { meta: { reason } } : {}),
  });

export function reconnecting(
  options: Pick<TcpRedisOptions, "reconnectBackoffMs" | "connectTimeoutMs" | "url" | "clock">,
  client: { connected(): boolean; connect(): Promise<void> },
): { ready(): Promise<void>; close(): void } {
  const reconnectBackoffMs = options.reconnectBackoffMs ?? 1000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  const clock = options.clock ?? systemClock;
  let connecting: Promise<void> | undefined;
  let failedAt = Number.NEGATIVE_INFINITY;
  let failure: { message: string; reason?: string } = { message: "Redis is unreachable" };
  let closed = false;
  return {
    async ready() {
      if (client.connected()) return;
      if (closed) throw redisUnavailable("the Redis client is closed");
      if (clock.monotonic() - failedAt < reconnectBackoffMs) {
        throw redisUnavailable(failure.message, undefined, failure.reason);
      }
      const started = clock.monotonic();
      connecting ??= client
        .connect()
        .catch(async (error: unknown) => {
          // Both clients say "Connection closed" for a refused password too. A server that closed at once (not a
          // timeout, not a refused port) is asked why, once per attempt: see redis-refusal.ts.
          const answered = clock.monotonic() - started < connectTimeoutMs / 2;
          const refusal = answered ? await redisRefusal(options.url, connectTimeoutMs) : undefined;
          failedAt = clock.monotonic();
          // Only an authentication refusal points at the URL's credentials; Redis's other refusals (LOADING,
          // protected mode's DENIED, max clients) are quoted as they are.
          const credentials = /^(WRONGPASS|NOAUTH)\b|^ERR .*(AUTH|password)/i.test(refusal ?? "");
          failure = refusal
            ? {
                message: `Redis refused the connection (${refusal})${credentials ? ": check the user and password in the Redis URL" : ""}`,
                reason: "refused",
              }
            : { message: "Redis is unreachable" };
          throw redisUnavailable(failure.message, error, failure.reason);
        })
        .finally(() => {
          connecting = undefined;
        });
      await connecting;
    },
    close() {
      closed = true;
    },
  };
}

/**
 * Bounds what one connection holds unanswered (see `maxOutstanding`, `replyTimeoutMs`). `drop` ends the current
 * connection, failing its commands; the next `connect` opens a new one. A stuck connection is found by the next
 * command, so against a hung Redis it holds at most the commands of one reply timeout (about one at a breaker's
 * probe rate), and the rest of the time at most `maxOutstanding`.
 */
export function boundedReplies(
  options: Pick<TcpRedisOptions, "maxOutstanding" | "replyTimeoutMs" | "clock">,
  drop: () => void,
): <T>(command: () => Promise<T>) => Promise<T> {
  const maxOutstanding = options.maxOutstanding ?? 1000;
  const replyTimeoutMs = options.replyTimeoutMs ?? 5000;
  const clock = options.clock ?? systemClock;
  // Number of each command awaiting its reply on the current connection → when it was sent; oldest first.
  const awaiting = new Map<number, number>();
  let sent = 0;
  return async (command) => {
    const oldest = awaiting.values().next();
    if (!oldest.done && clock.monotonic() - oldest.value > replyTimeoutMs) {
      awaiting.clear();
      drop();
    } else if (awaiting.size >= maxOutstanding) {
      throw redisUnavailable(
        `Redis has not answered the ${maxOutstanding} commands this connection awaits`,
        undefined,
        "timed out",
      );
    }
    const number = sent++;
    awaiting.set(number, clock.monotonic());
    try {
      return await command();
    } finally {
      awaiting.delete(number);
    }
  };
}
