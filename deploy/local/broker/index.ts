// startBroker: a QStash-compatible broker (HTTP API, durable Postgres store, signed push delivery).
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../pglite/index.ts";
import { bunServe } from "../../bun/serve.ts";
import { dialableHost } from "../../serve.ts";
import { Batcher } from "./batcher.ts";
import { type BrokerOptions, resolveOptions } from "./config.ts";
import { checkSchema } from "./search-path.ts";
import { connect, migrate, recoverInFlight, type Sql } from "./db.ts";
import { Dispatcher } from "./dispatcher.ts";
import { Maintenance } from "./maintenance.ts";
import { startPGliteUpkeep } from "../pglite/upkeep.ts";
import { handle } from "./router.ts";
import type { BrokerContext } from "./routes-publish.ts";
import { createSigner } from "./signing.ts";
import { housekeeping } from "./store-events.ts";
import { type Accepted, insertMessages } from "./store-messages.ts";
import type { NewMessage } from "./types.ts";

export type { BrokerOptions } from "./config.ts";
export {
  DEV_CURRENT_SIGNING_KEY,
  DEV_NEXT_SIGNING_KEY,
  DEV_PORT,
  DEV_TOKEN,
  defaultDeliveryConcurrency,
} from "./config.ts";

export interface Broker {
  /** Base URL for `new Client({ baseUrl: url, token })`. */
  url: string;
  port: number;
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
  /** The broker's postgres.js pool (for inspection in tests and tools). */
  sql: Sql;
  /** Messages that were being delivered when the broker last stopped, and went back to pending. */
  recovered: number;
  /** Deliveries answered 2xx since start. */
  delivered(): number;
  /** Deliveries kept in flight at once (BrokerOptions.deliveryConcurrency, as resolved). */
  deliveryConcurrency: number;
  /** The periodic VACUUM (ANALYZE), when enabled (see BrokerOptions.maintenance). */
  maintenance: Maintenance | undefined;
  /**
   * Stops handing out messages and waits (up to 5 s) for the deliveries under way; publishing goes on. For a node
   * that embeds the broker: its actors are still there to answer those deliveries, and nothing new reaches them
   * while they stop (a delivery they refused would spend a retry and wait out its backoff after the restart).
   */
  pauseDeliveries(): Promise<void>;
  /** Stops HTTP, lets deliveries under way finish (up to 5 s), then closes the database. */
  stop(): Promise<void>;
}

const HOUSEKEEPING_MS = 60_000;

export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const config = resolveOptions(options);
  let embedded: EmbeddedPostgres | undefined;
  let sql: Sql | undefined;
  try {
    if (options.sql) {
      sql = options.sql;
    } else {
      let url = config.databaseUrl;
      let max = 10;
      if (!url) {
        embedded = await startEmbeddedPostgres({
          dataDir: config.dataDir,
          sync: options.pgliteSync,
        });
        url = embedded.url;
        max = embedded.maxConnections;
      }
      sql = await connect({ url, max, schema: config.schema, socket: embedded?.socket, prepare: "detect" });
      if (!embedded) await checkSchema(sql, url, config.schema);
    }
    const ownsPool = !options.sql;
    await migrate(sql, options.sql ? options.schemaMarkers : undefined);
    const recovered = await recoverInFlight(sql);
    const db = sql;
    const maintenance = config.maintenance && new Maintenance(db, config.maintenance, config.log);

    const dispatcher = new Dispatcher(db, {
      fetch: config.fetch,
      sign: createSigner(config.currentSigningKey),
      timeScale: config.timeScale,
      concurrency: config.deliveryConcurrency,
      pollIntervalMs: config.pollIntervalMs,
      log: config.log,
      ...(maintenance ? { recorded: (count: number) => maintenance.recorded(count) } : {}),
    });
    // Publish stores due messages as active when the dispatcher has slots and nothing due waits before them,
    // and hands them over; otherwise it tells the dispatcher what there is to claim, and when.
    const ingest = new Batcher<NewMessage, Accepted>(
      async (messages) => {
        const now = Date.now();
        const due = messages.filter((m) => m.queueName === null && m.dueAt <= now);
        const start = dispatcher.reserve(due.map((m) => m.id));
        let stored: Awaited<ReturnType<typeof insertMessages>>;
        try {
          stored = await insertMessages(db, messages, config.dedupWindowMs, start);
        } catch (error) {
          dispatcher.abandon(start);
          throw error;
        }
        dispatcher.adopt(start, stored.started);
        maintenance?.wrote(messages.length);
        const fresh = messages.filter((m, i) => !stored.accepted[i]?.deduplicated && !start.has(m.id));
        if (fresh.some((m) => m.queueName !== null || m.dueAt <= now)) dispatcher.wake();
        const later = fresh.filter((m) => m.queueName === null && m.dueAt > now);
        if (later.length > 0) dispatcher.dueAt(Math.min(...later.map((m) => m.dueAt)));
        return stored.accepted;
      },
      5000,
      (message) => message.body.byteLength,
      16 * 1024 * 1024,
    );
    const ctx: BrokerContext = {
      sql: db,
      options: config,
      ingest,
      wake: () => dispatcher.wake(),
      callerIp: (req) => peers.get(req) ?? null,
    };
    // The runtime's serve reports each request's peer; the routes read it back through `callerIp`.
    const peers = new WeakMap<Request, string>();
    const server = await (options.serve ?? bunServe)({
      port: config.port,
      hostname: config.hostname,
      // No limit of the server's own: its 413 has an empty body. The routes read bodies as streams, up to their
      // limits, and answer a JSON 413 past them (http-util.ts readBody); Bun buffers nothing they do not read.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      fetch: (req, peer) => {
        if (peer.address) peers.set(req, peer.address);
        return handle(req, ctx);
      },
      ...(options.tls
        ? {
            tls: {
              files: options.tls.files,
              requireClientCert: false,
              ...(options.tls.onApplied ? { onApplied: options.tls.onApplied } : {}),
            },
          }
        : {}),
    });
    if (options.deliverAfter)
      void options.deliverAfter.then(() => {
        if (!stopping) dispatcher.start();
      });
    else dispatcher.start();
    maintenance?.start();
    // Its own PGlite has no checkpointer and no WAL writer: the broker runs their stand-ins (../pglite/upkeep.ts).
    const upkeep = embedded ? startPGliteUpkeep(db, config.log) : undefined;
    // Once now (a broker that was down, or started with a shorter retention, prunes at once), then every minute.
    const sweepOnce = () =>
      void housekeeping(db, { eventsMs: config.eventRetentionMs, deadLettersMs: config.dlqRetentionMs }).then(
        ({ deadLetters }) => {
          // Said every time: a dead letter is an operator's to replay or delete, and this one was never handled.
          if (deadLetters > 0)
            config.log(`housekeeping: deleted ${deadLetters} dead letters older than the DLQ retention`);
        },
        (error) => config.log(`housekeeping: ${String(error)}`),
      );
    sweepOnce();
    const sweep = setInterval(sweepOnce, HOUSEKEEPING_MS);
    const port = server.port;
    let stopping: Promise<void> | undefined;
    return {
      url: `${options.tls ? "https" : "http"}://${dialableHost(config.hostname)}:${port}`,
      port,
      token: config.token,
      currentSigningKey: config.currentSigningKey,
      nextSigningKey: config.nextSigningKey,
      sql: db,
      recovered,
      delivered: () => dispatcher.delivered,
      deliveryConcurrency: config.deliveryConcurrency,
      maintenance,
      pauseDeliveries: () => dispatcher.stop(),
      stop() {
        stopping ??= (async () => {
          clearInterval(sweep);
          await server.stop(true);
          await ingest.idle();
          await dispatcher.stop();
          await maintenance?.stop();
          await upkeep?.stop();
          if (ownsPool) await db.end({ timeout: 5 });
          await embedded?.stop();
        })();
        return stopping;
      },
    };
  } catch (error) {
    if (!options.sql) await sql?.end({ timeout: 1 }).catch(() => {});
    await embedded?.stop().catch(() => {});
    throw error;
  }
}
