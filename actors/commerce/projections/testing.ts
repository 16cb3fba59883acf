// Test support only: a Postgres schema per test file on the real server, and envelopes for the commerce events.
import postgres from "postgres";
import { connect, type Sql } from "../../../deploy/local/broker/db.ts";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { ActivityLog } from "./activity-log.ts";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface TestDatabase {
  sql: Sql;
  /** A second pool on the same schema that leaves int8 as strings (postgres.js's default). */
  plain: postgres.Sql;
  drop(): Promise<void>;
}

/** A fresh schema, and pools whose search_path is that schema; `drop` ends them and drops it. */
export async function testDatabase(name: string): Promise<TestDatabase> {
  const schema = `projections_${name}_${process.pid}_${Math.floor(Math.random() * 1e6)}`.toLowerCase();
  const sql = await connect({ url: TEST_DATABASE_URL, max: 2, schema });
  const plain = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema },
  });
  return {
    sql,
    plain,
    async drop() {
      await sql.end();
      await plain.end();
      const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
      } finally {
        await admin.end();
      }
    },
  };
}

let counter = 0;

/**
 * Activity-log rows recorded `ageMs` ago, as the log holds them (`recorded_at` set at insert, since the log's trigger
 * forbids UPDATE): ids `<prefix>-1` to `<prefix>-<count>`.
 */
export async function recordAgedActivity(
  sql: TestDatabase["sql"],
  entry: { type: string; count: number; ageMs: number; prefix: string },
): Promise<void> {
  const { type, count, ageMs, prefix } = entry;
  await sql`
    INSERT INTO activity_log (id, type, source, time, envelope, recorded_at)
    SELECT ${prefix} || '-' || i, ${type}, 'edgewise://test', now(), jsonb_build_object('type', ${type}::text),
           now() - ${`${ageMs} milliseconds`}::interval
    FROM generate_series(1, ${count}::int) AS i`;
}

/** A test database with the activity log's table, for the retention tests. */
export interface ActivityLogTestDatabase extends TestDatabase {
  log: ActivityLog;
  /** `recordAgedActivity` in this database: ids `<prefix>-1` to `<prefix>-<count>`. */
  recorded(type: string, count: number, ageMs: number, prefix: string): Promise<void>;
  /** How many entries of each type the log holds. */
  typesLeft(): Promise<Record<string, number>>;
}

export async function activityLogDatabase(name: string): Promise<ActivityLogTestDatabase> {
  const db = await testDatabase(name);
  const log = new ActivityLog(db.sql);
  await log.migrate();
  return {
    ...db,
    log,
    recorded: (type, count, ageMs, prefix) => recordAgedActivity(db.sql, { type, count, ageMs, prefix }),
    async typesLeft() {
      const rows = await db.sql<Array<{ type: string; n: number }>>`
        SELECT type, count(*)::int AS n FROM activity_log GROUP BY type ORDER BY type`;
      return Object.fromEntries(rows.map((row) => [row.type, row.n]));
    },
  };
}

/** An event envelope as the queue delivers it to `target`; `time` defaults to a fixed, increasing clock. */
export function event<Data>(
  type: string,
  data: Data,
  options: { id?: string; time?: number; target?: string; subject?: string } = {},
): Envelope<Data> {
  counter++;
  return createEnvelope({
    type,
    source: "edgewise://test",
    data,
    time: options.time ?? Date.UTC(2026, 0, 1) + counter * 1000,
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(options.target === undefined ? {} : { target: options.target }),
    ...(options.subject === undefined ? {} : { subject: options.subject }),
  });
}
