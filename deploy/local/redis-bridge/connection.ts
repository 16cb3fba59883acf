// One pipelined RESP2 connection to Redis over TCP, and the redis:// URL that describes it.
import net from "node:net";
import { bridgeSetupRefused } from "../../../shared/resilience/redis-failures.ts";
import { type Arg, encodeCommands, ErrorReply, type Reply, ReplyParser } from "./resp.ts";

export interface RedisTarget {
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
}

/** `redis://[user[:password]@]host[:port][/db]`. TLS (`rediss://`) is not supported by the bridge. */
export function parseRedisUrl(text: string): RedisTarget {
  const url = new URL(text);
  if (url.protocol !== "redis:")
    throw new Error(`redis-bridge: unsupported Redis URL scheme ${url.protocol}`);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new Error("redis-bridge: the Redis URL's database is not a number");
  return {
    host: url.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: url.port ? Number(url.port) : 6379,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db,
  };
}

/** How long a request waits for Redis's replies by default (REDIS_BRIDGE_TIMEOUT). */
export const DEFAULT_REPLY_TIMEOUT_MS = 30_000;

/**
 * Redis cannot be reached for now: no connection (refused, or none within the connect timeout), or the connection
 * was lost. A request may succeed once it is back (the next one reconnects): the bridge answers 503, as Upstash
 * does while it cannot serve, not the 500 of a bug.
 */
export class RedisUnavailable extends Error {}

/**
 * Redis sent no reply within the deadline. Replies are matched to requests by position, so one that never came
 * leaves the connection useless: it is dropped, and every request waiting on it fails with this error.
 */
export class RedisTimeout extends RedisUnavailable {}

interface Pending {
  replies: Reply[];
  expected: number;
  resolve: (replies: Reply[]) => void;
  reject: (error: Error) => void;
  deadline: ReturnType<typeof setTimeout>;
}

/**
 * Commands are written in order and Redis answers in order, so replies are matched to callers by position.
 * A batch is one `write`: nothing else this process sends can land between its commands.
 */
export class RespConnection {
  private readonly queue: (Pending | undefined)[] = [];
  private head = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly replyTimeoutMs: number,
  ) {
    const parser = new ReplyParser((reply) => this.deliver(reply));
    socket.on("data", (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch (error) {
        // Bytes that are not RESP: not an outage but a bug (ours or Redis's), answered 500.
        const reason = error instanceof Error ? error.message : String(error);
        this.fail(new Error(`redis-bridge: Redis connection lost (${reason})`));
        socket.destroy();
      }
    });
    socket.on("error", (error) => this.lost(error.message));
    socket.on("close", () => this.lost("connection closed"));
  }

  static async open(
    target: RedisTarget,
    timeoutMs = 5000,
    replyTimeoutMs = DEFAULT_REPLY_TIMEOUT_MS,
  ): Promise<RespConnection> {
    const socket = net.createConnection({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new RedisUnavailable(
            `redis-bridge: no connection to ${target.host}:${target.port} after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(
          new RedisUnavailable(
            `redis-bridge: cannot connect to ${target.host}:${target.port}: ${error.message}`,
          ),
        );
      });
    });
    const connection = new RespConnection(socket, replyTimeoutMs);
    const setup: Arg[][] = [];
    if (target.password !== undefined) {
      setup.push(target.username ? ["AUTH", target.username, target.password] : ["AUTH", target.password]);
    }
    if (target.db !== 0) setup.push(["SELECT", String(target.db)]);
    if (setup.length > 0) {
      const replies = await connection.send(setup);
      const refused = replies.find((reply) => reply instanceof ErrorReply);
      if (refused instanceof ErrorReply) {
        connection.close();
        throw new Error(`${bridgeSetupRefused}${refused.message}`);
      }
    }
    return connection;
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /**
   * Sends the commands as one write; resolves with their replies (error replies included, as values). Without all
   * of them within `replyTimeoutMs`, rejects with RedisTimeout and drops the connection: a Redis that stopped
   * answering without closing it (a hung server, a lost route) would otherwise hold every later request forever.
   */
  send(commands: readonly (readonly Arg[])[]): Promise<Reply[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (commands.length === 0) return Promise.resolve([]);
    return new Promise<Reply[]>((resolve, reject) => {
      const deadline = setTimeout(() => this.timedOut(), this.replyTimeoutMs);
      this.queue.push({ replies: [], expected: commands.length, resolve, reject, deadline });
      this.socket.write(encodeCommands(commands));
    });
  }

  close(): void {
    this.lost("connection closed by the bridge");
    this.socket.end();
  }

  private deliver(reply: Reply): void {
    const pending = this.queue[this.head];
    if (!pending) {
      this.fail(new Error("redis-bridge: Redis connection lost (Redis sent a reply nobody asked for)"));
      this.socket.destroy();
      return;
    }
    pending.replies.push(reply);
    if (pending.replies.length < pending.expected) return;
    clearTimeout(pending.deadline);
    this.queue[this.head] = undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    pending.resolve(pending.replies);
  }

  private timedOut(): void {
    this.fail(
      new RedisTimeout(
        `redis-bridge: Redis did not answer within ${this.replyTimeoutMs} ms; the connection was dropped, and the next request opens a new one`,
      ),
    );
    this.socket.destroy();
  }

  /** The socket closed or failed (reset, refused, closed by Redis or by a proxy): an outage, not a bug. */
  private lost(reason: string): void {
    this.fail(new RedisUnavailable(`redis-bridge: Redis connection lost (${reason})`));
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (let i = this.head; i < this.queue.length; i++) {
      const pending = this.queue[i];
      if (!pending) continue;
      clearTimeout(pending.deadline);
      pending.reject(this.failure);
    }
    this.queue.length = 0;
    this.head = 0;
  }
}

/**
 * The bridge's link to Redis: one shared connection, reopened on the next request after it is lost. `report` hears
 * once that Redis became unavailable and once that it answers again, not once per request refused meanwhile.
 */
export class RedisLink {
  private current: Promise<RespConnection> | undefined;
  private unavailable = false;

  constructor(
    private readonly target: RedisTarget,
    private readonly connectTimeoutMs = 5000,
    private readonly replyTimeoutMs = DEFAULT_REPLY_TIMEOUT_MS,
    private readonly report: (message: string) => void = () => {},
  ) {}

  async send(commands: readonly (readonly Arg[])[]): Promise<Reply[]> {
    try {
      const replies = await (await this.connection()).send(commands);
      if (this.unavailable) {
        this.unavailable = false;
        this.report("Redis answers again");
      }
      return replies;
    } catch (error) {
      if (error instanceof RedisUnavailable && !this.unavailable) {
        this.unavailable = true;
        this.report(`Redis unavailable, requests get 503 until it is back: ${error.message}`);
      }
      throw error;
    }
  }

  async connection(): Promise<RespConnection> {
    for (let current = this.current; current; current = this.current) {
      const connection = await current.catch(() => undefined);
      if (connection && !connection.closed) return connection;
      // Whoever finds it dead first replaces it; the others wait for the replacement.
      if (this.current === current) this.current = undefined;
    }
    const next = RespConnection.open(this.target, this.connectTimeoutMs, this.replyTimeoutMs);
    this.current = next;
    return next;
  }

  async close(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    (await current?.catch(() => undefined))?.close();
  }
}
