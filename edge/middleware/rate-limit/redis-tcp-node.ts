// tcpRedis() for Deno (and Node): the same commands as on Bun, over ioredis, since Deno has no built-in Redis client.
import { createHash } from "node:crypto";
import Redis from "ioredis";
import {
  boundedReplies,
  reconnecting,
  redisCommands,
  type TcpRedis,
  type TcpRedisOptions,
} from "./redis-tcp-commands.ts";

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

/**
 * ioredis with its own retries off (no offline queue, no reconnect strategy, no per-request retries, no ready
 * check): `reconnecting` decides when to try again, as with Bun's client, so both runtimes fail over alike. A stuck
 * connection is replaced by a new client (`boundedReplies`): the disconnected one fails what it held.
 */
export function nodeTcpRedis(options: TcpRedisOptions): TcpRedis {
  const open = () => {
    const client = new Redis(options.url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 1000,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    // Errors reach the caller through the failed command; without a listener ioredis would also print each one.
    client.on("error", () => {});
    return client;
  };
  let client = open();
  const connection = reconnecting(options, {
    connected: () => client.status === "ready",
    // One attempt at a time (`reconnecting` shares it); after a failed one the client's status is "end" again.
    connect: () => client.connect(),
  });
  const bounded = boundedReplies(options, () => {
    const stuck = client;
    client = open();
    stuck.disconnect();
  });
  const commands = redisCommands(
    (command, args) =>
      bounded(async () => {
        await connection.ready();
        return await client.call(command, ...args);
      }),
    sha1,
  );
  return Object.assign(commands, {
    close() {
      connection.close();
      client.disconnect();
    },
  });
}
