// Test support: a redis-server of a test file's own in cluster mode, one node holding every slot (never the shared one).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseRedisUrl, RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import { direct, text } from "../redis-bridge/helpers.ts";
import { restartablePort } from "./ports.ts";

export interface ClusterRedis {
  /** `redis://127.0.0.1:<port>`. */
  url: string;
  /** Stops the server and removes its directory (idempotent). */
  stop(): Promise<void>;
}

/**
 * Starts redis-server with `cluster-enabled yes` on a free loopback port, without persistence, gives it all 16,384
 * slots and waits for `cluster_state:ok`. One node answers every key (no MOVED to follow), yet refuses what a cluster
 * refuses: a command or script whose keys hash to different slots is CROSSSLOT.
 */
export async function startClusterRedis(): Promise<ClusterRedis> {
  const port = restartablePort();
  const dir = mkdtempSync(join(tmpdir(), "edgewise-redis-cluster-"));
  const server = Bun.spawn(
    [
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--cluster-enabled",
      "yes",
      // The cluster bus's port, else the port + 10,000, which for an ephemeral port may be past 65,535 or taken.
      "--cluster-port",
      String(restartablePort()),
      "--cluster-config-file",
      join(dir, "nodes.conf"),
      "--dir",
      dir,
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    server.kill();
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `redis://127.0.0.1:${port}`;
  let admin: RespConnection | undefined;
  try {
    for (let tries = 0; !admin; tries++) {
      admin = await RespConnection.open(parseRedisUrl(url)).catch(() => undefined);
      if (!admin && tries > 100) throw new Error("redis-server did not start");
      if (!admin) await Bun.sleep(50);
    }
    const added = await direct(admin, "CLUSTER", "ADDSLOTSRANGE", "0", "16383");
    if ((added as { text?: string }).text !== "OK")
      throw new Error(`CLUSTER ADDSLOTSRANGE answered ${JSON.stringify(added)}`);
    for (let tries = 0; ; tries++) {
      if (text(await direct(admin, "CLUSTER", "INFO"))?.includes("cluster_state:ok")) break;
      if (tries > 200) throw new Error("the cluster did not become ok");
      await Bun.sleep(50);
    }
    return { url, stop };
  } catch (error) {
    await stop();
    throw error;
  } finally {
    admin?.close();
  }
}
