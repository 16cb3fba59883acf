// The plan probe counts what a bitmap scan's indexes found, not only the rows its heap scan read.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type PlanProbe, planProbe } from "./plan-probe.ts";
import { type TestDatabase, testDatabase } from "./testing.ts";

let db: TestDatabase;
let probe: PlanProbe;

beforeAll(async () => {
  db = await testDatabase("plan_probe");
  // a and b each match 2,000 rows of 20,000, and 200 together: an index on each, ANDed in one bitmap.
  await db.sql`CREATE TABLE probed (id int PRIMARY KEY, a int NOT NULL, b int NOT NULL, pad text NOT NULL)`;
  await db.sql`
    INSERT INTO probed SELECT i, i % 10, (i / 10) % 10, repeat('x', 200)
    FROM generate_series(1, 20000) AS i`;
  await db.sql`CREATE INDEX probed_a ON probed (a)`;
  await db.sql`CREATE INDEX probed_b ON probed (b)`;
  await db.sql`ANALYZE probed`;
  probe = await planProbe(db.sql);
});
afterAll(async () => {
  await probe?.end();
  await db?.drop();
});

test("two indexes ANDed in a bitmap: every entry they found is counted, not only the rows read from the table", async () => {
  probe.reset();
  const rows = await probe.sql`SELECT id FROM probed WHERE a = ${3} AND b = ${4}`;
  const [plan] = await db.sql.unsafe("EXPLAIN (FORMAT JSON) SELECT id FROM probed WHERE a = 3 AND b = 4");
  // The plan this test is about; if the planner ever prefers another, the test says so instead of passing.
  expect(JSON.stringify(plan)).toContain("BitmapAnd");
  expect(rows.length).toBeGreaterThan(0);
  const entries = await Promise.all([
    db.sql`SELECT count(*)::int AS n FROM probed WHERE a = 3`,
    db.sql`SELECT count(*)::int AS n FROM probed WHERE b = 4`,
  ]);
  const found = entries.reduce((sum, [row]) => sum + (row?.n as number), 0);
  expect(await probe.rowsRead("probed")).toBe(found);
});

test("one index in a bitmap: its entries are the rows read, counted once", async () => {
  probe.reset();
  await probe.sql`SELECT pad FROM probed WHERE a = ${3}`;
  const [plan] = await db.sql.unsafe("EXPLAIN (FORMAT JSON) SELECT pad FROM probed WHERE a = 3");
  expect(JSON.stringify(plan)).toContain("Bitmap Heap Scan");
  expect(await probe.rowsRead("probed")).toBe(2000);
});
