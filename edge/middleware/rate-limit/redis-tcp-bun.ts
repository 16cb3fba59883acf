// tcpRedis(): the part of @upstash/redis that @upstash/ratelimit calls, over Bun's built-in TCP client (REDIS_URL).
import { RedisClient } from "bun";
import {
  boundedReplies,
  reconnecting,
  redisCommands,
  type TcpRedis,
  type TcpRedisOptions,
} from "./redis-tcp-commands.ts";

export type { TcpRedis, TcpRedisOptions } from "./redis-tcp-commands.ts";

const sha1 = (text: string) => new Bun.CryptoHasher("sha1").update(text).digest("hex");

/**
 * Bun's offline queue and auto-reconnect are off: `reconnecting` decides when to try again (see there). A stuck
 * connection is replaced by a new client (`boundedReplies`): the closed one fails what it held.
 */
export function tcpRedis(options: TcpRedisOptions): TcpRedis {
  const open = () =>
    new RedisClient(options.url, {
      connectionTimeout: options.connectTimeoutMs ?? 1000,
      autoReconnect: false,
      enableOfflineQueue: false,
    });
  let client = open();
  const connection = reconnecting(options, {
    connected: () => client.connected,
    connect: () => client.connect(),
  });
  const bounded = boundedReplies(options, () => {
    const stuck = client;
    client = open();
    stuck.close();
  });
  const commands = redisCommands(
    (command, args) =>
      bounded(async () => {
        await connection.ready();
        return await client.send(command, args);
      }),
    sha1,
  );
  return Object.assign(commands, {
    close() {
      connection.close();
      client.close();
    },
  });
}
