// The node's one Postgres pool: on DATABASE_URL, or on the embedded PGlite in the data dir, with its upkeep.
import type { Logger } from "../shared/telemetry/log/index.ts";
import { connect, type Sql } from "./local/broker/db.ts";
import { checkSchema } from "./local/broker/search-path.ts";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./local/pglite/index.ts";
import { startPGliteUpkeep } from "./local/pglite/upkeep.ts";
import type { NodeOptions } from "./node-options.ts";
import type { Stop } from "./node-stop.ts";

export interface NodePostgres {
  /** The embedded PGlite, when DATABASE_URL is unset. */
  embedded: EmbeddedPostgres | undefined;
  sql: Sql;
}

export async function openNodePostgres(
  options: NodeOptions,
  dataDir: string,
  logger: Logger,
  stops: Stop[],
): Promise<NodePostgres> {
  const { config } = options;
  // One pool for the node: the embedded PGlite serves a single connection, which everyone shares.
  const embedded = config.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ dataDir, sync: config.EDGEWISE_PGLITE_SYNC });
  if (embedded) stops.push(() => embedded.stop());
  const sql = await connect({
    url: config.DATABASE_URL ?? (embedded as { url: string }).url,
    max: embedded ? embedded.maxConnections : 10,
    socket: embedded?.socket,
    schema: options.schema,
    prepare: "detect",
  });
  stops.push(() => sql.end({ timeout: 5 }));
  if (config.DATABASE_URL) await checkSchema(sql, config.DATABASE_URL, options.schema);
  // PGlite runs no checkpointer and no WAL writer: the node runs their stand-ins (local/pglite/upkeep.ts).
  if (embedded) {
    const upkeep = startPGliteUpkeep(sql, (line) => logger.warn(line));
    stops.push(() => upkeep.stop());
  }
  return { embedded, sql };
}
