// A Redis that hangs with the connection open: what one TCP connection holds unanswered is bounded, on both clients.
import { afterAll, describe, expect, test } from "bun:test";
import {
  tcpRedis,
  type TcpRedis,
  type TcpRedisOptions,
} from "../../edge/middleware/rate-limit/redis-tcp-bun.ts";
import { nodeTcpRedis } from "../../edge/middleware/rate-limit/redis-tcp-node.ts";
import { TcpForwarder } from "./forwarder.ts";
import { runPrefix } from "./support.ts";

const adapters: Array<[string, (options: TcpRedisOptions) => TcpRedis]> = [
  ["tcpRedis (Bun)", tcpRedis],
  ["nodeTcpRedis (Deno)", nodeTcpRedis],
];

const forwarders: TcpForwarder[] = [];
const clients: TcpRedis[] = [];
afterAll(() => {
  for (const client of clients) client.close();
  for (const forwarder of forwarders) forwarder.stop();
});

/** How a call ended, or "pending" if it has not within `ms`. */
const within = (call: Promise<unknown>, ms: number) =>
  Promise.race([
    call.then(
      () => "answered",
      (error: { code?: string }) => `rejected:${error?.code ?? "error"}`,
    ),
    Bun.sleep(ms).then(() => "pending"),
  ]);

describe("a hung Redis over TCP", () => {
  for (const [name, connect] of adapters) {
    test(`${name}: past maxOutstanding unanswered commands a new one fails at once (503); an overdue connection is dropped and replaced`, async () => {
      const forwarder = new TcpForwarder({ hostname: "127.0.0.1", port: 6379 });
      forwarders.push(forwarder);
      forwarder.start();
      const redis = connect({
        url: `redis://127.0.0.1:${forwarder.port}`,
        connectTimeoutMs: 500,
        reconnectBackoffMs: 0,
        maxOutstanding: 8,
        replyTimeoutMs: 300,
      });
      clients.push(redis);
      const key = `${runPrefix("hung")}:missing`;
      expect(await redis.get(key)).toBeNull();

      forwarder.muted = true;
      const stuck = Array.from({ length: 8 }, () => within(redis.get(key), 5_000));
      // The ninth is refused at once, with the error a caller already handles for a Redis that is away. Nothing
      // else settles it within the second given (a loaded machine's stalls fit in it): a ninth sent after the eight
      // would stay pending until the next command drops the stuck connection.
      const ninth = redis.get(key);
      expect(await within(ninth, 1_000)).toBe("rejected:unavailable");
      await expect(ninth).rejects.toMatchObject({ status: 503 });

      // Past the reply timeout the next command drops the stuck connection: the eight settle (refused, never
      // matched to a later command's reply), and it goes over a new connection, which answers once Redis does.
      await Bun.sleep(350);
      forwarder.muted = false;
      expect(await within(redis.get(key), 2_000)).toBe("answered");
      expect(new Set(await Promise.all(stuck))).not.toContain("pending");
      expect(new Set(await Promise.all(stuck))).not.toContain("answered");
      expect(await redis.get(key)).toBeNull();
    });
  }
});
