// The broker's Postgres: one postgres.js pool, and the qstash_* tables, created once per version of their DDL.
import type net from "node:net";
import postgres from "postgres";
import { addColumnIfMissing } from "../../../actors/commerce/add-column.ts";
import {
  ensureSchema,
  type SchemaComponent,
  type SchemaMarkers,
} from "../../../shared/postgres/schema-marker.ts";
import { pgSockets, reconnectBackoff, tlsFromUrl } from "./pg-socket.ts";
import { eventRows, insertEvents } from "./store-events.ts";
import type { LoggedMessage } from "./store-events.ts";

export type Sql = postgres.Sql<Record<string, never>>;

/** int8 columns (ms timestamps, sequences) come back as numbers: they stay far below 2^53. */
const int8AsNumber = {
  to: 20,
  from: [20],
  serialize: (value: number) => String(value),
  parse: (value: string) => Number(value),
};

export interface ConnectOptions {
  url: string;
  /** Connections in the pool. The embedded PGlite serves one at a time, so it gets 1. */
  max: number;
  schema?: string | undefined;
  /** The embedded PGlite's in-process connection (EmbeddedPostgres.socket), instead of TCP to `url`. */
  socket?: (() => unknown) | undefined;
  /** Shown in pg_stat_activity: who holds a connection (the actor host's lease names its node). */
  applicationName?: string;
  /**
   * `false`: no named prepared statements (a transaction pooler hands each transaction any server connection);
   * `"detect"`: off when `url` turns out to be such a pooler (`transactionPooled`). Default: on, unless the URL
   * says `prepare=false` (postgres.js reads it).
   */
  prepare?: boolean | "detect";
}

export async function connect(options: ConnectOptions): Promise<Sql> {
  // Our sockets make the TLS connection the URL asks for (pg-socket.ts), so postgres.js itself is told no TLS.
  const { url, tls } = options.socket ? { url: options.url, tls: undefined } : tlsFromUrl(options.url);
  const base = {
    backoff: reconnectBackoff,
    onnotice: () => {},
    transform: { undefined: null },
    types: { int8: int8AsNumber },
    ssl: false as const,
    // postgres.js types `socket` as returning a net.Socket; PGliteWire implements the part of it postgres.js uses.
    socket: (options.socket ?? pgSockets(tls)) as unknown as () => net.Socket,
  };
  if (options.schema) {
    const bootstrap = postgres(url, { ...base, max: 1 });
    try {
      await bootstrap`CREATE SCHEMA IF NOT EXISTS ${bootstrap(options.schema)}`;
    } finally {
      await bootstrap.end();
    }
  }
  // A probe that fails (Postgres down, TLS refused) leaves postgres.js's default: the pool's first query reports why.
  const prepare =
    options.prepare === "detect"
      ? !options.socket && (await transactionPooled(options.url).catch(() => false))
        ? false
        : undefined
      : options.prepare;
  return postgres(url, {
    ...base,
    max: options.max,
    ...(prepare === false ? { prepare: false } : {}),
    connection: {
      ...(options.schema ? { search_path: options.schema } : {}),
      ...(options.applicationName ? { application_name: options.applicationName } : {}),
    },
  }) as unknown as Sql;
}

/**
 * Whether `url` leads to a transaction pooler (PgBouncer's pool_mode=transaction, Supavisor's transaction port):
 * one whose clients share server connections between transactions, so a statement prepared in one transaction is
 * missing in the next ("prepared statement … does not exist"). Client A asks for its backend; then, up to three
 * times, another client opens a transaction and asks for its own, and A asks again. Directly or through a session
 * pooler each client keeps its backend, whatever else runs; through a transaction pooler a holder is handed A's idle
 * one (PgBouncer lends the one last used), or A another. A round can miss when other clients take A's backend in
 * between (a node and a broker starting together did), hence the rounds. Never true of a session; a few short
 * connections at start, bounded to 5 s (then false).
 */
export async function transactionPooled(databaseUrl: string): Promise<boolean> {
  const { url, tls } = tlsFromUrl(databaseUrl);
  const socket = pgSockets(tls) as unknown as () => net.Socket;
  const options = { max: 1, prepare: false, ssl: false as const, socket, onnotice: () => {} };
  const client = () => postgres(url, options);
  const pid = async (sql: postgres.Sql) =>
    ((await sql`SELECT pg_backend_pid() AS pid`)[0] as { pid: number }).pid;
  const a = client();
  const holders: postgres.Sql[] = [];
  // A probe that outlived its bound (a query answered while the connections were being closed) opens no holder
  // past it: nothing would close that one, and it would keep a server connection in its transaction for good.
  let over = false;
  const probe = async () => {
    const first = await pid(a);
    for (let round = 0; round < 3 && !over; round++) {
      const holder = client();
      holders.push(holder);
      await holder`BEGIN`;
      if ((await pid(holder)) === first || (await pid(a)) !== first) return true;
    }
    return false;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      probe(),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), 5_000);
      }),
    ]);
  } finally {
    over = true;
    clearTimeout(timer);
    await Promise.all([a, ...holders].map((sql) => sql.end({ timeout: 1 })));
  }
}

// A message's CREATED event stays on its row until something else is logged for it (store-events.ts). Messages
// stored before the `logged` column existed had theirs logged already, hence true for them.
export const brokerSchema: SchemaComponent = {
  name: "broker",
  version: 3,
  lock: 8245531,
  ddl: `
      CREATE TABLE IF NOT EXISTS qstash_messages (
        id text PRIMARY KEY,
        seq bigserial NOT NULL,
        url text NOT NULL,
        method text NOT NULL,
        headers jsonb NOT NULL,
        body bytea NOT NULL,
        queue_name text,
        max_retries int NOT NULL,
        timeout_ms int NOT NULL,
        due_at bigint NOT NULL,
        not_before bigint,
        created_at bigint NOT NULL,
        state text NOT NULL DEFAULT 'pending',
        attempts int NOT NULL DEFAULT 0,
        caller_ip text,
        last_status int,
        last_error text
      );
      CREATE INDEX IF NOT EXISTS qstash_messages_due ON qstash_messages (due_at, seq)
        WHERE state = 'pending' AND queue_name IS NULL;
      CREATE INDEX IF NOT EXISTS qstash_messages_queue ON qstash_messages (queue_name, seq)
        WHERE queue_name IS NOT NULL;
      CREATE TABLE IF NOT EXISTS qstash_dlq (
        dlq_id text PRIMARY KEY,
        seq bigserial NOT NULL,
        message_id text NOT NULL,
        url text NOT NULL,
        method text NOT NULL,
        headers jsonb NOT NULL,
        body bytea NOT NULL,
        queue_name text,
        max_retries int NOT NULL,
        timeout_ms int NOT NULL,
        not_before bigint,
        created_at bigint NOT NULL,
        attempts int NOT NULL,
        caller_ip text,
        failed_at bigint NOT NULL,
        response_status int,
        response_headers jsonb,
        response_body bytea,
        last_error text
      );
      CREATE INDEX IF NOT EXISTS qstash_dlq_seq ON qstash_dlq (seq);
      -- Dead letters past their retention, found by age (version 2).
      CREATE INDEX IF NOT EXISTS qstash_dlq_failed ON qstash_dlq (failed_at);
      CREATE TABLE IF NOT EXISTS qstash_events (
        id bigserial PRIMARY KEY,
        time bigint NOT NULL,
        message_id text NOT NULL,
        state text NOT NULL,
        url text NOT NULL,
        queue_name text,
        response_status int,
        error text,
        next_delivery_time bigint
      );
      CREATE INDEX IF NOT EXISTS qstash_events_message ON qstash_events (message_id, id);
      -- Events carried by a later row (store-events.ts), and the log listed newest first by time. Added only where
      -- missing (version 3): ALTER TABLE … IF NOT EXISTS locked out the log's readers until the commit.
      ${addColumnIfMissing("qstash_events", "created_time", "bigint")}
      ${addColumnIfMissing("qstash_events", "created_due", "bigint")}
      ${addColumnIfMissing("qstash_events", "active_time", "bigint")}
      CREATE INDEX IF NOT EXISTS qstash_events_time ON qstash_events (time, id);
      -- The log of one state newest first (GET /v2/events?state=FAILED), by its own rows alone (version 3).
      CREATE INDEX IF NOT EXISTS qstash_events_state ON qstash_events (state, time, id);
      CREATE TABLE IF NOT EXISTS qstash_queues (
        name text PRIMARY KEY,
        parallelism int NOT NULL,
        paused boolean NOT NULL DEFAULT false,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      );
      CREATE TABLE IF NOT EXISTS qstash_dedup (
        key text PRIMARY KEY,
        message_id text NOT NULL,
        expires_at bigint NOT NULL
      );
      DO $logged$ BEGIN
        IF NOT EXISTS (
          SELECT 1 FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = 'qstash_messages' AND column_name = 'logged'
        ) THEN
          ALTER TABLE qstash_messages ADD COLUMN logged boolean NOT NULL DEFAULT true, ADD COLUMN active_at bigint;
          ALTER TABLE qstash_messages ALTER COLUMN logged SET DEFAULT false;
        END IF;
      END $logged$;
    `,
};

/**
 * Creates the tables and indexes if missing; safe to run from several brokers at once, and without DDL when the
 * marker says this version is applied.
 */
export function migrate(sql: Sql, markers?: SchemaMarkers): Promise<void> {
  return ensureSchema(sql, brokerSchema, markers);
}

/**
 * After a crash, messages that were being delivered go back to pending: their attempt may or may not have
 * reached the destination, so they are delivered again (at least once), and the interrupted attempt is logged
 * as an ERROR. One broker per database.
 */
export function recoverInFlight(sql: Sql): Promise<number> {
  return backToPending(sql, {
    where: (db) => db`true`,
    uncount: false,
    error: "interrupted: the broker stopped before this attempt's outcome was recorded",
  });
}

/**
 * Messages left active by a statement whose reply was lost (a claim, or a publish that started its messages):
 * it committed, but the broker never heard so, and nobody delivers them. They go back to pending, like after a
 * crash, except those the broker holds (deliveries under way, outcomes not yet committed) and any made active
 * after `activeUpTo`. Their attempt never began, so it is not counted; the log says what happened. One broker
 * per database.
 */
export function recoverOrphans(sql: Sql, activeUpTo: number, held: readonly string[]): Promise<number> {
  return backToPending(sql, {
    where: (db) => db`active_at <= ${activeUpTo} AND NOT (id = ANY(${held as string[]}::text[]))`,
    uncount: true,
    error: "not attempted: the database's reply was lost as this attempt began; it goes back to the queue",
  });
}

async function backToPending(
  sql: Sql,
  options: { where: (db: Sql) => postgres.PendingQuery<postgres.Row[]>; uncount: boolean; error: string },
): Promise<number> {
  const now = Date.now();
  return await sql.begin(async (tx) => {
    const db = tx as unknown as Sql;
    const rows = await db<LoggedMessage[]>`
      WITH was AS (
        SELECT id, url, queue_name, created_at, due_at, logged, active_at FROM qstash_messages
        WHERE state = 'active' AND ${options.where(db)} FOR UPDATE
      )
      UPDATE qstash_messages m SET state = 'pending', logged = true, active_at = NULL,
        attempts = m.attempts - ${options.uncount ? 1 : 0}
      FROM was WHERE m.id = was.id
      RETURNING was.*`;
    if (rows.length > 0)
      await insertEvents(
        db,
        rows.flatMap((m) => eventRows(m, [{ state: "ERROR", error: options.error }], now)),
      );
    return rows.length;
  });
}

export interface TableActivity {
  table: string;
  liveRows: number;
  deadRows: number;
  /** Rows inserted, updated or deleted since the last ANALYZE. */
  changedSinceAnalyze: number;
}

/**
 * What the statistics collector counts (PGlite keeps these counters too) for every table of the connection's
 * schema: the broker's, and on a node's embedded PGlite the application's beside them (billing's outbox and
 * accounts, the read model), which nothing else vacuums there either.
 */
export async function tableActivity(sql: Sql): Promise<TableActivity[]> {
  const rows = await sql`
    SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze FROM pg_stat_user_tables
    WHERE schemaname = current_schema() ORDER BY relname`;
  return rows.map((r) => ({
    table: r.relname as string,
    liveRows: Number(r.n_live_tup),
    deadRows: Number(r.n_dead_tup),
    changedSinceAnalyze: Number(r.n_mod_since_analyze),
  }));
}

/**
 * VACUUM and/or ANALYZE of one table, for a database that nothing else vacuums (the embedded PGlite has no
 * autovacuum). It runs outside any transaction and holds PGlite's single connection while it runs.
 * `TRUNCATE false` keeps a table's pages (free, for new rows): an emptied, truncated queue table (the broker's
 * messages, billing's outbox) would get cached plans fit for a tiny table (sequential scans), kept as it fills up.
 */
export async function vacuum(
  sql: Sql,
  table: string,
  work: { vacuum: boolean; analyze: boolean },
): Promise<void> {
  if (work.vacuum) {
    const options = [...(work.analyze ? ["ANALYZE"] : []), "TRUNCATE false"];
    await sql.unsafe(`VACUUM (${options.join(", ")}) ${quoted(table)}`);
  } else if (work.analyze) {
    await sql.unsafe(`ANALYZE ${quoted(table)}`);
  }
}

/**
 * An expression that makes the statement's own transaction commit without waiting for the WAL to reach the disk
 * (`synchronous_commit = off`, for this transaction only; the setting is read at commit). For writes that a crash
 * may lose because they are redone anyway: a claim (the message stays pending and is delivered again) and a
 * delivered message's removal (delivered again; receivers deduplicate by message id). Never for a publish, which
 * the sender takes as stored. Any later commit that waits for the disk takes these with it, as the WAL is
 * written in order. Place it where it is evaluated only when the statement writes (a RETURNING list).
 */
export function relaxedCommit(sql: Sql) {
  return sql`set_config('synchronous_commit', 'off', true)`;
}

const quoted = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;
