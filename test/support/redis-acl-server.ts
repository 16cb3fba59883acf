// Test support: a redis-server of a test file's own, with one ACL user held to a key pattern (never the shared one).
import { parseRedisUrl, RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import { restartablePort } from "./ports.ts";
import { direct } from "../redis-bridge/helpers.ts";

export interface AclRedis {
  /** `redis://<user>:<password>@127.0.0.1:<port>`: the user's URL. */
  url: string;
  /** Stops the server (idempotent). */
  stop(): Promise<void>;
}

/**
 * Starts redis-server on a free loopback port, without persistence, and adds `user` with `password`, allowed every
 * command but the dangerous ones on the keys matching `keys` only (`~<keys>`), as an operator holds a deployment to
 * its prefix. ACL users belong to the server, so they are never set on the Redis other test files share.
 */
export async function startAclRedis(user: string, keys: string, password: string): Promise<AclRedis> {
  const port = restartablePort();
  const server = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdout: "ignore", stderr: "ignore" },
  );
  const stop = async () => {
    server.kill();
    await server.exited;
  };
  let admin: RespConnection | undefined;
  for (let tries = 0; !admin; tries++) {
    admin = await RespConnection.open(parseRedisUrl(`redis://127.0.0.1:${port}`)).catch(() => undefined);
    if (!admin && tries > 100) {
      await stop();
      throw new Error("redis-server did not start");
    }
    if (!admin) await Bun.sleep(50);
  }
  const reply = await direct(
    admin,
    "ACL",
    "SETUSER",
    user,
    "on",
    `>${password}`,
    `~${keys}`,
    "+@all",
    "-@dangerous",
  );
  admin.close();
  if ((reply as { text?: string }).text !== "OK") {
    await stop();
    throw new Error(`ACL SETUSER answered ${JSON.stringify(reply)}`);
  }
  return { url: `redis://${user}:${password}@127.0.0.1:${port}`, stop };
}
