// tcpRedis(): the part of @upstash/redis that @upstash/ratelimit calls, over Bun's built-in TCP client (REDIS_URL).
import { RedisClient } from "bun";
import type { Redis } from "@upstash/redis";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { withoutUpstashOnlyFlags } from "../../../shared/redis/lua-shebang.ts";
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
}

export interface TcpRedis extends RatelimitRedis {
  close(): void;
}

type SetOptions = Parameters<Redis["set"]>[2];

const sha1 = (text: string) => new Bun.CryptoHasher("sha1").update(text).digest("hex");

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
 * Reconnection is ours, not Bun's: with Bun's offline queue a command waits out every reconnect attempt (seconds),
 * and once its retries are spent the client stays closed. Here commands fail fast while Redis is away, and the
 * first call after the backoff reconnects; the limiter's timeout bounds a Redis that accepts but never answers.
 */
export function tcpRedis(options: TcpRedisOptions): TcpRedis {
  const connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  const reconnectBackoffMs = options.reconnectBackoffMs ?? 1000;
  const client = new RedisClient(options.url, {
    connectionTimeout: connectTimeoutMs,
    autoReconnect: false,
    enableOfflineQueue: false,
  });
  /** The client's SHA1 of a script → the SHA1 of the script Redis actually holds (flags dropped). */
  const aliases = new Map<string, string>();
  let connecting: Promise<void> | undefined;
  let failedAt = Number.NEGATIVE_INFINITY;
  let closed = false;

  async function ready(): Promise<void> {
    if (client.connected) return;
    if (closed)
      throw new EdgewiseError("unavailable", "the Redis client is closed", { status: 503, public: true });
    if (Date.now() - failedAt < reconnectBackoffMs) {
      throw new EdgewiseError("unavailable", "Redis is unreachable", { status: 503, public: true });
    }
    connecting ??= client
      .connect()
      .catch((error: unknown) => {
        failedAt = Date.now();
        throw new EdgewiseError("unavailable", "Redis is unreachable", {
          status: 503,
          public: true,
          cause: error,
        });
      })
      .finally(() => {
        connecting = undefined;
      });
    await connecting;
  }

  async function send(command: string, args: string[]): Promise<unknown> {
    await ready();
    const reply: unknown = await client.send(command, args);
    return reply;
  }

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

    close() {
      closed = true;
      client.close();
    },
  };
}
