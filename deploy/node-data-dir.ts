// What a node claims before it opens anything: its data dir (private, locked per part) and a shared database's lease.
import { hostname } from "node:os";
import { resolve } from "node:path";
import type { SyncMode } from "../actors/hosts/local/sql.ts";
import type { Logger } from "../shared/telemetry/log/index.ts";
import { acquireActorHostLease } from "./actor-host-lease.ts";
import { clearStaging } from "./backup/online.ts";
import { createPrivateFile, reportTightened, tightenDataDir } from "./data-dir-files.ts";
import { lockDataDir } from "./data-dir-lock.ts";
import type { NodeOptions } from "./node-options.ts";
import type { Stop } from "./node-stop.ts";
import { privateDataDir } from "./secrets.ts";

export interface NodeDataDir {
  /** The data dir's absolute path. */
  dataDir: string;
  /** Opens a SQLite file in the data dir, made 0600 first. */
  openPrivateDb: NodeOptions["openActorDb"];
}

export async function claimDataDir(
  options: NodeOptions,
  logger: Logger,
  stops: Stop[],
): Promise<NodeDataDir> {
  const { config } = options;
  const dataDir = resolve(config.EDGEWISE_DATA_DIR);
  const openDataDir = privateDataDir(dataDir);
  if (openDataDir) logger.warn(openDataDir);
  // SQLite files made 0600 before SQLite opens them: it creates them 0644, and their -wal and -shm take that mode.
  const openPrivateDb = (path: string, sync: SyncMode) => {
    createPrivateFile(path);
    return options.openActorDb(path, sync);
  };
  // One process at a time on the embedded Postgres and on the local actors; released last, once they are closed.
  const openLockDb = (path: string) => options.openActorDb(path, "NORMAL");
  for (const part of [
    ...(config.DATABASE_URL ? [] : (["pglite"] as const)),
    ...(config.ACTOR_HOST_URL ? [] : (["actors"] as const)),
  ]) {
    const lock = lockDataDir(dataDir, part, openLockDb);
    stops.push(() => lock.release());
  }
  // An online backup interrupted by a kill left its staging copy (secrets included): never data, removed. Only with
  // the pglite lock held, which every node that takes online backups holds (embedded Postgres only).
  if (!config.DATABASE_URL && clearStaging(dataDir)) {
    logger.warn("removed the staging dir an interrupted online backup left in the data dir", { dataDir });
  }
  // Files an earlier version left readable by others (it made SQLite's 0644, PGlite's 0666): private from now on.
  // After the locks: a node still running on this dir is refused first, instead of its files changing under the walk.
  reportTightened(dataDir, tightenDataDir(dataDir), (message, paths) =>
    logger.warn(message, { dataDir, paths }),
  );
  // One actor host per shared database: a second node hosting actors there would keep its own copy of each.
  if (config.DATABASE_URL && !config.ACTOR_HOST_URL) {
    const lease = await acquireActorHostLease({
      url: config.DATABASE_URL,
      schema: options.schema,
      holder: `${hostname()} pid ${process.pid}`,
      onLost:
        options.onFatal ??
        ((error) => {
          logger.error(error.message);
          process.exit(1);
        }),
    });
    stops.push(() => lease.release());
  }
  return { dataDir, openPrivateDb };
}
