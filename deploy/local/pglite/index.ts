// Embedded Postgres: PGlite (files in <dataDir>/pglite), reached over the Postgres wire protocol, in process or on 127.0.0.1.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { tightenTree } from "../../data-dir-files.ts";
import { openPGlite, type PGliteSync } from "./durable.ts";
import { atQuietInstant, PGliteGate } from "./quiet-instant.ts";
import { PGliteWire } from "./wire.ts";

export interface EmbeddedPostgresOptions {
  /** The directory that holds `pglite/`. */
  dataDir: string;
  /**
   * `"in-process"` (the default): postgres.js reaches PGlite through `socket`, with no TCP (see wire.ts for why).
   * `"tcp"`: pglite-socket serves it on 127.0.0.1, for a client in another process.
   */
  transport?: "in-process" | "tcp";
  /** TCP port on 127.0.0.1 with `transport: "tcp"`; 0 or absent picks a free one. */
  port?: number;
  /** `FULL` (the default) fsyncs every commit; `NORMAL` survives a killed process, not a power loss (durable.ts). */
  sync?: PGliteSync;
}

export interface EmbeddedPostgres {
  /**
   * A postgres.js URL. Open at most `maxConnections` connections (postgres.js option `max`), and pass `socket`
   * (postgres.js option `socket`) when it is set.
   */
  url: string;
  /** In process: opens a connection; postgres.js calls it for each one it opens. Absent on TCP. */
  socket?: () => PGliteWire;
  maxConnections: number;
  /** fsyncs made since it started: 0 on `sync: "NORMAL"`. */
  fsyncs(): number;
  /**
   * Runs `take` (synchronous) at an instant when PGlite runs nothing and no transaction is open, its files as a
   * stop would leave them to a copy; 503 if that instant does not come within `withinMs` (quiet-instant.ts).
   * In process only: over TCP another process may be mid-transaction, unseen.
   */
  atQuietInstant?<T>(withinMs: number, take: () => T): Promise<T>;
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
  // Private to this user, with any parent it makes: PGlite makes its files readable by all (0666 from its
  // template, 0644 for those it writes later), so its tree is tightened once it has opened and once it has closed.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { db, fsyncs } = await openPGlite(dir, options.sync ?? "FULL");
  tightenTree(dir);
  const close = async () => {
    try {
      await db.close();
    } finally {
      tightenTree(dir);
    }
  };
  const maxConnections = 1;
  if ((options.transport ?? "in-process") === "in-process")
    return inProcess(db, close, maxConnections, fsyncs);
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: options.port ?? 0, maxConnections });
  try {
    await server.start();
  } catch (error) {
    await close();
    throw error;
  }
  const port = Number(server.getServerConn().split(":").at(-1));
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    maxConnections,
    fsyncs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await close();
    },
  };
}

/** The same single connection as over TCP, and the same refusal of a second one while it is open. */
function inProcess(
  db: PGlite,
  close: () => Promise<void>,
  maxConnections: number,
  fsyncs: () => number,
): EmbeddedPostgres {
  const open = new Set<PGliteWire>();
  const gate = new PGliteGate();
  let stopped = false;
  return {
    // postgres.js reads the user and database from it; with `socket` it opens no TCP connection.
    url: "postgres://postgres@pglite.invalid/postgres",
    maxConnections,
    fsyncs,
    atQuietInstant: (withinMs, take) => atQuietInstant(db, gate, withinMs, take),
    socket() {
      if (stopped) throw new Error("the embedded Postgres has stopped");
      if (open.size >= maxConnections)
        throw new Error(
          `the embedded Postgres serves ${maxConnections} connection at a time, and it is in use`,
        );
      const wire = new PGliteWire(db, () => open.delete(wire), gate);
      open.add(wire);
      return wire;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const wire of open) wire.destroy();
      await close();
    },
  };
}
