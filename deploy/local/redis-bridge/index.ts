// startRedisBridge: Upstash's Redis REST API in front of a real Redis, so @upstash/redis runs locally unchanged.
import { maskSecrets } from "../../../shared/telemetry/log/redact.ts";
import { hostRefusal } from "../../adapter-answer.ts";
import { DEFAULT_REPLY_TIMEOUT_MS, parseRedisUrl, RedisLink } from "./connection.ts";
import { createHandler } from "./routes.ts";
import { ScriptShim } from "./scripts.ts";

export const DEFAULT_PORT = 8079;
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

export interface RedisBridgeOptions {
  /** TCP port; 0 picks a free one. Default 8079. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1. */
  hostname?: string;
  /** `redis://[user[:password]@]host[:port][/db]`. Default redis://127.0.0.1:6379. */
  redisUrl?: string;
  /** The bearer token clients must send (UPSTASH_REDIS_REST_TOKEN). Required. */
  token: string;
  /**
   * During a rotation of `token`: the one being replaced, still accepted until the bridge restarts without it
   * (UPSTASH_REDIS_REST_PREVIOUS_TOKEN), so nodes and Workers can move to the new token one by one.
   */
  previousToken?: string;
  /** Largest request body, in bytes. Default 10 MiB. */
  maxBodyBytes?: number;
  /** How long to wait for a TCP connection to Redis. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * How long a request waits for Redis's replies (REDIS_BRIDGE_TIMEOUT). Past it the client gets 503
   * `{"error": "ERR redis-bridge: Redis did not answer within …"}` and the connection to Redis is replaced.
   * Default 30000 ms.
   */
  replyTimeoutMs?: number;
  /**
   * Where unexpected failures go (`POST /: …`, `GET /set/…: …`, answered 500: the route and command name, never
   * its arguments), and a line when Redis becomes unavailable and when it answers again. Each line is masked as a
   * node's log is (`maskSecrets`) before it gets here. Default console.error.
   */
  log?: (message: string) => void;
}

export interface RedisBridge {
  /** For `new Redis({ url, token })`. */
  url: string;
  port: number;
  token: string;
  /** Stops HTTP (closing open requests) and the Redis connection. */
  stop(): Promise<void>;
}

export async function startRedisBridge(options: RedisBridgeOptions): Promise<RedisBridge> {
  const { token } = options;
  if (typeof token !== "string" || token.length === 0) throw new Error("redis-bridge: a token is required");
  if (options.previousToken === token) throw new Error("redis-bridge: previousToken must differ from token");
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error("redis-bridge: port must be 0-65535");
  const hostname = options.hostname ?? "127.0.0.1";
  const maxBodyBytes = options.maxBodyBytes ?? 10 * 1024 * 1024;
  const write = options.log ?? ((message: string) => console.error(`[redis-bridge] ${message}`));
  // An error's text may quote what a request carried; every line goes through the one masking the node's logs use.
  const log = (message: string) => write(maskSecrets(message));

  const replyTimeoutMs = options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
  if (!Number.isFinite(replyTimeoutMs) || replyTimeoutMs <= 0)
    throw new Error("redis-bridge: replyTimeoutMs must be a positive number of milliseconds");
  const link = new RedisLink(
    parseRedisUrl(options.redisUrl ?? DEFAULT_REDIS_URL),
    options.connectTimeoutMs,
    replyTimeoutMs,
    log,
  );
  await link.connection(); // fail at start, not on the first request, when Redis is not there
  const handle = createHandler({
    token,
    previousToken: options.previousToken,
    link,
    scripts: new ScriptShim(),
    log,
    maxBodyBytes,
  });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      port,
      hostname,
      // The handler enforces maxBodyBytes itself, so an oversized body gets a JSON error rather than Bun's bare 413.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      idleTimeout: 60,
      // Never Bun's development error page (its default unless NODE_ENV=production) for a failure that escapes
      // the handler, which answers its own failures: Upstash's error shape, and the failure logged (masked).
      development: false,
      // Which also turns on SO_REUSEPORT unless told not to: a second bridge would bind this port beside the first.
      reusePort: false,
      error: (error) => {
        log(
          `a request failed outside the handler: ${error instanceof Error ? error.message : String(error)}`,
        );
        return Response.json({ error: "ERR internal error" }, { status: 500 });
      },
      // A Host that is no authority gets the nodes' and the broker's 400 before the routes: Bun builds request.url
      // from one a URL parser refuses (`999.1.1.1`), and the routes' `new URL(req.url)` threw, a 500 and a log line.
      fetch: (req) => hostRefusal(req) ?? handle(req),
    });
  } catch (error) {
    await link.close();
    throw error;
  }
  const boundPort = server.port ?? port;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${hostname}:${boundPort}`,
    port: boundPort,
    token,
    stop() {
      stopping ??= (async () => {
        await server.stop(true);
        await link.close();
      })();
      return stopping;
    },
  };
}
