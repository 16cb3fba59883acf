// Embedded Postgres: PGlite (files in <dataDir>/pglite) served on 127.0.0.1 over the wire protocol.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export interface EmbeddedPostgresOptions {
  /** The directory that holds `pglite/`. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
}

export interface EmbeddedPostgres {
  /** A postgres.js URL. Open at most `maxConnections` connections to it (postgres.js option `max`). */
  url: string;
  maxConnections: number;
  stop(): Promise<void>;
}

/**
 * PGlite is one Postgres backend in WebAssembly. pglite-socket 0.2 can multiplex several client connections
 * (`maxConnections`), but it interleaves their protocol messages one by one, so two clients' extended-query
 * messages (Parse/Bind/Execute) can cross; a transaction pins the backend to one client, but a plain query
 * does not. One connection is the safe setting: postgres.js then pipelines every query over it, and the
 * server refuses a second connection ("Too many connections"). Hence `max: 1` for postgres.js, and no
 * LISTEN/NOTIFY (it needs a connection of its own).
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dir = join(options.dataDir, "pglite");
  mkdirSync(dir, { recursive: true });
  const db = await PGlite.create(dir);
  const maxConnections = 1;
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: options.port ?? 0, maxConnections });
  try {
    await server.start();
  } catch (error) {
    await db.close();
    throw error;
  }
  const port = Number(server.getServerConn().split(":").at(-1));
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    maxConnections,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await db.close();
    },
  };
}
