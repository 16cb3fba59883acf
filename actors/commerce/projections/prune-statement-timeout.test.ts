// Pruning a large activity log under a role's short statement_timeout: no statement reads the whole log.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { ActivityLog } from "./activity-log.ts";
import { securityEventTypes } from "./security-retention.ts";
import { TEST_DATABASE_URL, type TestDatabase, testDatabase } from "./testing.ts";

/** Entries kept: a day of a busy node's log is millions (deploy/activity-retention.ts); here scaled down. */
const kept = 1_000_000;
/** The role's bound, scaled down as the log is: reading all of it takes longer, a batch far less. */
const statementTimeoutMs = 150;

let db: TestDatabase;
let timed: postgres.Sql;
let log: ActivityLog;

beforeAll(async () => {
  db = await testDatabase("prune_timeout");
  await new ActivityLog(db.sql).migrate();
  // Recorded over the last hour, in order, every 100th a security event, each with an envelope of about 600 bytes
  // as an order's events have; nothing older than a day.
  await db.sql`
    INSERT INTO activity_log (id, type, source, time, envelope, recorded_at)
    SELECT 'kept-' || i, CASE WHEN i % 100 = 0 THEN ${securityEventTypes[0] as string} ELSE 'OrderPlaced' END,
           'edgewise://test', now(), jsonb_build_object('data', (SELECT string_agg(md5(i::text || k), '') FROM generate_series(1, 18) AS k)),
           now() - interval '1 hour' + i * interval '1 millisecond'
    FROM generate_series(1, ${kept}::int) AS i`;
  await db.sql`ANALYZE activity_log`;
  const schema = (await db.sql<{ schema: string }[]>`SELECT current_schema() AS schema`)[0]?.schema as string;
  // As an operator sets it: ALTER ROLE … SET statement_timeout, or DATABASE_URL's options.
  timed = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema, statement_timeout: statementTimeoutMs },
  });
  log = new ActivityLog(timed as unknown as TestDatabase["sql"]);
}, 120_000);
afterAll(async () => {
  await timed?.end({ timeout: 1 });
  await db?.drop();
});

test("a prune with nothing past the retention finishes: its last batch does not read the log kept", async () => {
  // Before, 57014 on every run: the last batch (fewer than batchSize found) read all the rows kept, in seq order.
  expect(await log.pruneActivity({ olderThan: Date.now() - 86_400_000 })).toBe(0);
  expect(await log.pruneActivity({ olderThan: Date.now() - 86_400_000, types: securityEventTypes })).toBe(0);
}, 60_000);

test("old entries are pruned under it too, all of them, of every type or of some", async () => {
  await db.sql`
    INSERT INTO activity_log (id, type, source, time, envelope, recorded_at)
    SELECT 'old-' || i, CASE WHEN i % 2 = 0 THEN ${securityEventTypes[0] as string} ELSE 'OrderPlaced' END,
           'edgewise://test', now(), '{}'::jsonb, now() - interval '8 days'
    FROM generate_series(1, 3000) AS i`;
  expect(await log.pruneActivity({ olderThan: Date.now() - 86_400_000, types: securityEventTypes })).toBe(
    1_500,
  );
  expect(await log.pruneActivity({ olderThan: Date.now() - 86_400_000 })).toBe(1_500);
  const [left] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM activity_log`;
  expect(left?.n).toBe(kept);
}, 60_000);
