// A start under the role's short lock_timeout / statement_timeout waits for another node's migration, or a writer.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { billingSchema } from "../actors/commerce/billing/schema.ts";
import {
  TEST_DATABASE_URL,
  type TestDatabase,
  testDatabase,
} from "../actors/commerce/projections/testing.ts";
import { ensureSchema, readSchemaMarkers } from "../shared/postgres/schema-marker.ts";
import type { Sql } from "./local/broker/db.ts";
import { startStores } from "./schema-start-stores.ts";

const components = ["activity_log", "api_keys", "billing", "broker", "orders_read", "webhooks"];

let db: TestDatabase;
let schema: string;
const pools: postgres.Sql[] = [];
beforeAll(async () => {
  db = await testDatabase("start_waits");
  schema = (await db.sql<{ schema: string }[]>`SELECT current_schema() AS schema`)[0]?.schema as string;
});
afterAll(async () => {
  for (const pool of pools) await pool.end({ timeout: 1 });
  await db?.drop();
});

/** A pool on the test schema, with the role settings an operator gives (`ALTER ROLE … SET`, DATABASE_URL options). */
function pool(settings: { lock_timeout?: number; statement_timeout?: number } = {}): Sql {
  const sql = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema, ...settings },
  });
  pools.push(sql);
  return sql as unknown as Sql;
}

/** Another session runs `lock` in a transaction and holds what it took for `ms`: once it is held, `done` ends with it. */
async function holdFor(lock: (tx: postgres.TransactionSql) => Promise<unknown>, ms: number) {
  const other = pool();
  let taken!: () => void;
  const held = new Promise<void>((resolve) => {
    taken = resolve;
  });
  const done = (other as unknown as postgres.Sql).begin(async (tx) => {
    await lock(tx);
    taken();
    await Bun.sleep(ms);
  });
  await held;
  return { done };
}

/** Every store migrated, billing's marked as by an older version: the next start runs billing's DDL. */
async function staleBilling(): Promise<void> {
  await startStores(db.sql);
  await db.sql`UPDATE edgewise_schema SET version = 1, fingerprint = 'older' WHERE component = 'billing'`;
}

test("two nodes starting at once on an empty schema under lock_timeout 200ms both come up", async () => {
  await Promise.all([startStores(pool({ lock_timeout: 200 })), startStores(pool({ lock_timeout: 200 }))]);
  expect([...(await readSchemaMarkers(db.sql)).keys()].sort()).toEqual(components);
}, 30_000);

test("a start while another node migrates for longer than the role's lock_timeout and statement_timeout waits for it", async () => {
  await staleBilling();
  // Another node in the middle of billing's migration: it holds billing's advisory lock for 2.5 s.
  const migrating = await holdFor((tx) => tx`SELECT pg_advisory_xact_lock(${billingSchema.lock})`, 2_500);
  const started = performance.now();
  // Before, 55P03 (lock timeout) on pg_advisory_xact_lock after 200 ms; with only statement_timeout, 57014 after 1 s.
  await startStores(pool({ lock_timeout: 200, statement_timeout: 1_000 }));
  expect(performance.now() - started).toBeGreaterThan(2_000);
  await migrating.done;
  expect((await readSchemaMarkers(db.sql)).get("billing")?.version).toBe(billingSchema.version);
}, 30_000);

test("an upgrade's DDL that meets a writer past the role's lock_timeout is run again once the writer commits", async () => {
  await staleBilling();
  // A writer of the old version mid-transaction: ROW EXCLUSIVE, which billing's CREATE INDEX / TRIGGER wait on.
  const writing = await holdFor(
    (tx) => tx`LOCK TABLE billing_accounts, billing_transactions, billing_entries IN ROW EXCLUSIVE MODE`,
    1_500,
  );
  const started = performance.now();
  // Before, 55P03 on billing's first CREATE INDEX after 200 ms.
  await startStores(pool({ lock_timeout: 200, statement_timeout: 1_000 }));
  expect(performance.now() - started).toBeGreaterThan(1_000);
  await writing.done;
  expect((await readSchemaMarkers(db.sql)).get("billing")?.version).toBe(billingSchema.version);
}, 30_000);

test("a migration whose lock stays taken fails the start, after its wait, with an error naming the component", async () => {
  await staleBilling();
  const migrating = await holdFor((tx) => tx`SELECT pg_advisory_xact_lock(${billingSchema.lock})`, 2_500);
  const started = performance.now();
  const refused = await ensureSchema(pool({ lock_timeout: 200 }), billingSchema, undefined, 1_000).catch(
    (error: unknown) => error,
  );
  expect(performance.now() - started).toBeLessThan(2_000);
  expect(refused).toMatchObject({ code: "unavailable", cause: { code: "55P03" } });
  expect((refused as Error).message).toContain("billing schema could not be migrated");
  await migrating.done;
  await ensureSchema(pool({ lock_timeout: 200 }), billingSchema);
  expect((await readSchemaMarkers(db.sql)).get("billing")?.version).toBe(billingSchema.version);
}, 30_000);
