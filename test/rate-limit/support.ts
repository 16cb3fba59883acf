// Test support for the real-Redis suites: unique prefixes, key cleanup, and stand-ins for a Redis that is away or hung.
import { RedisClient } from "bun";

export const redisUrl = "redis://127.0.0.1:6379";

/** A prefix of its own per run, so parallel runs and leftovers never meet. */
export const runPrefix = (suite: string) => `edgewise-test:rl:${suite}:${crypto.randomUUID()}`;

/** Deletes every key under `prefix` (SCAN, never KEYS). */
export async function deleteKeys(prefix: string): Promise<number> {
  const client = new RedisClient(redisUrl, { connectionTimeout: 2000, autoReconnect: false });
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = (await client.send("SCAN", [cursor, "MATCH", `${prefix}*`, "COUNT", "1000"])) as [
        string,
        string[],
      ];
      cursor = next;
      if (keys.length > 0) deleted += Number(await client.send("DEL", keys));
    } while (cursor !== "0");
  } finally {
    client.close();
  }
  return deleted;
}

export async function redisGet(key: string): Promise<string | null> {
  const client = new RedisClient(redisUrl, { connectionTimeout: 2000, autoReconnect: false });
  try {
    return (await client.send("GET", [key])) as string | null;
  } finally {
    client.close();
  }
}

/** A 127.0.0.1 port with nothing listening: bound, then released. */
export function closedPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/** An HTTP server that accepts every request and never answers it. */
export function hungHttpServer(): { url: string; stop(): Promise<void> } {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

/** A TCP server that accepts connections and never says a word (a Redis stuck mid-failover). */
export function hungTcpServer(): { port: number; stop(): void } {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  return { port: listener.port, stop: () => listener.stop(true) };
}

/** Waits until `now` is at least `marginMs` away from the end of its fixed window, so a burst cannot straddle it. */
export async function awayFromBoundary(windowMs: number, marginMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await Bun.sleep(left + 50);
}

export const elapsedSince = (started: number) => performance.now() - started;
