// The broker's Postgres: one postgres.js pool, and the qstash_* tables created idempotently at start.
import postgres from "postgres";

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
}

export async function connect(options: ConnectOptions): Promise<Sql> {
  const base = { onnotice: () => {}, transform: { undefined: null }, types: { int8: int8AsNumber } };
  if (options.schema) {
    const bootstrap = postgres(options.url, { ...base, max: 1 });
    try {
      await bootstrap`CREATE SCHEMA IF NOT EXISTS ${bootstrap(options.schema)}`;
    } finally {
      await bootstrap.end();
    }
  }
  return postgres(options.url, {
    ...base,
    max: options.max,
    ...(options.schema ? { connection: { search_path: options.schema } } : {}),
  }) as unknown as Sql;
}

/** Creates the tables and indexes if missing; safe to run from several brokers at once. */
export async function migrate(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(8245531)`;
    await tx.unsafe(`
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
    `);
  });
}

/**
 * After a crash, messages that were being delivered go back to pending: their attempt may or may not have
 * reached the destination, so they are delivered again (at least once). One broker per database.
 */
export async function recoverInFlight(sql: Sql): Promise<number> {
  const rows = await sql`UPDATE qstash_messages SET state = 'pending' WHERE state = 'active' RETURNING id`;
  return rows.length;
}
