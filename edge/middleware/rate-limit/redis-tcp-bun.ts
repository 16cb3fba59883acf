// tcpRedis(): the part of @upstash/redis that @upstash/ratelimit calls, over Bun's built-in TCP client (REDIS_URL).
import { RedisClient } from "bun";
import { reconnecting, redisCommands, type TcpRedis, type TcpRedisOptions } from "./redis-tcp-commands.ts";

export type { TcpRedis, TcpRedisOptions } from "./redis-tcp-commands.ts";

const sha1 = (text: string) => new Bun.CryptoHasher("sha1").update(text).digest("hex");

/** Bun's offline queue and auto-reconnect are off: `reconnecting` decides when to try again (see there). */
export function tcpRedis(options: TcpRedisOptions): TcpRedis {
  const client = new RedisClient(options.url, {
    connectionTimeout: options.connectTimeoutMs ?? 1000,
    autoReconnect: false,
    enableOfflineQueue: false,
  });
  const connection = reconnecting(options, {
    connected: () => client.connected,
    connect: () => client.connect(),
  });
  const commands = redisCommands(async (command, args) => {
    await connection.ready();
    return await client.send(command, args);
  }, sha1);
  return Object.assign(commands, {
    close() {
      connection.close();
      client.close();
    },
  });
}
