// Test helpers for the Redis REST bridge: a bridge on a free port, a direct RESP connection, per-run key prefixes.
import { afterAll, beforeAll } from "bun:test";
import { randomBytes } from "node:crypto";
import { parseRedisUrl, RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import { type RedisBridge, startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { type Arg, ErrorReply, type Reply } from "../../deploy/local/redis-bridge/resp.ts";
import { type FaultProxy, startFaultProxy } from "../chaos/fault-proxy.ts";

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Keys of one test file, e.g. `rbtest:sdk:4242:1a2b3c:`; no glob characters, so SCAN MATCH finds exactly them. */
export const uniquePrefix = (name: string) =>
  `rbtest:${name}:${process.pid}:${randomBytes(4).toString("hex")}:`;

export async function startTestBridge(): Promise<RedisBridge> {
  return await startRedisBridge({
    port: 0,
    redisUrl: TEST_REDIS_URL,
    token: `test-${randomBytes(16).toString("hex")}`,
  });
}

/** A connection straight to Redis, past the bridge: to check what the bridge did, or set raw bytes. */
export async function openDirect(): Promise<RespConnection> {
  return await RespConnection.open(parseRedisUrl(TEST_REDIS_URL));
}

export async function direct(connection: RespConnection, ...args: Arg[]): Promise<Reply> {
  const [reply = null] = await connection.send([args]);
  return reply;
}

export const text = (reply: Reply): string | null =>
  reply instanceof Uint8Array ? Buffer.from(reply).toString("utf8") : reply === null ? null : String(reply);

/** Deletes every key under `prefix`. */
export async function cleanup(connection: RespConnection, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const reply = await direct(connection, "SCAN", cursor, "MATCH", `${prefix}*`, "COUNT", "1000");
    if (reply instanceof ErrorReply || !Array.isArray(reply)) throw new Error("SCAN failed");
    const [next, keys] = reply;
    cursor = text(next ?? null) ?? "0";
    if (Array.isArray(keys) && keys.length > 0) await direct(connection, "UNLINK", ...(keys as Uint8Array[]));
  } while (cursor !== "0");
}

/**
 * Raw HTTP to the bridge: `token: null` sends none; the body is JSON-encoded unless it is a string or bytes. With
 * `timeoutMs`, a hang fails the test then instead of holding it.
 */
export async function call(
  bridge: RedisBridge,
  path: string,
  init: {
    body?: unknown;
    token?: string | null;
    headers?: Record<string, string>;
    method?: string;
    timeoutMs?: number;
  } = {},
): Promise<{ status: number; body: unknown }> {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? bridge.token : init.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  const body =
    init.body === undefined || typeof init.body === "string" || init.body instanceof Uint8Array
      ? (init.body as BodyInit | undefined)
      : JSON.stringify(init.body);
  const response = await fetch(`${bridge.url}${path}`, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
    ...(init.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(init.timeoutMs) }),
  });
  const raw = await response.text();
  let parsed: unknown = raw;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed };
}

export const b64 = (value: string | Uint8Array) => Buffer.from(value).toString("base64");

/** A bridge and a direct Redis connection for one test file; the file's keys are deleted afterwards. */
export function useBridge(
  prefix: string,
  started: (fixture: { bridge: RedisBridge; raw: RespConnection }) => void,
): void {
  let fixture: { bridge: RedisBridge; raw: RespConnection } | undefined;
  beforeAll(async () => {
    fixture = { bridge: await startTestBridge(), raw: await openDirect() };
    started(fixture);
  });
  afterAll(async () => {
    if (!fixture) return;
    await cleanup(fixture.raw, prefix);
    fixture.raw.close();
    await fixture.bridge.stop();
  });
}

/** A bridge whose Redis is reached through a fault proxy, for the outage tests; its lines are kept in `logged`. */
export interface BridgeBehindProxy {
  bridge: RedisBridge;
  /** Replaced by a test that closes it and starts another on the same port. */
  proxy: FaultProxy;
  logged: string[];
}

/** Starts one for the test file (fields set in beforeAll) and stops it, and deletes the file's keys, afterwards. */
export function useBridgeBehindProxy(
  prefix: string,
  options: { replyTimeoutMs?: number } = {},
): BridgeBehindProxy {
  const fixture = { logged: [] } as unknown as BridgeBehindProxy;
  beforeAll(async () => {
    fixture.proxy = await startFaultProxy({ target: parseRedisUrl(TEST_REDIS_URL) });
    fixture.bridge = await startRedisBridge({
      port: 0,
      redisUrl: `redis://${fixture.proxy.address}`,
      token: `test-${randomBytes(16).toString("hex")}`,
      ...options,
      log: (line) => fixture.logged.push(line),
    });
  });
  afterAll(async () => {
    await fixture.bridge?.stop();
    await fixture.proxy?.close();
    const raw = await openDirect();
    await cleanup(raw, prefix);
    raw.close();
  });
  return fixture;
}
