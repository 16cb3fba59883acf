// GET /v1/activity?type=<family>.* reads its family's entries by index, not the log newest first until a page is full.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { ActivityLog } from "./activity-log.ts";
import { type ActivityLogTestDatabase, activityLogDatabase, TEST_DATABASE_URL } from "./testing.ts";

const others = 20_000;
let db: ActivityLogTestDatabase;
let probe: postgres.Sql;
let log: ActivityLog;
const statements: Array<{ query: string; parameters: unknown[] }> = [];

beforeAll(async () => {
  db = await activityLogDatabase("family_plan");
  // The family's entries are the oldest, the rest of the log after them; beside them, types just outside the range.
  await db.recorded("admin.account_set", 3, 0, "admin");
  await db.recorded("admin", 1, 0, "bare");
  await db.recorded("admin/x", 1, 0, "slash");
  await db.recorded("adminx.y", 1, 0, "adminx");
  await db.recorded("OrderPlaced", others, 0, "order");
  await db.sql`ANALYZE activity_log`;
  const [row] = await db.sql<{ schema: string }[]>`SELECT current_schema() AS schema`;
  probe = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: row?.schema as string },
    debug: (_connection, query, parameters) => void statements.push({ query, parameters }),
  });
  log = new ActivityLog(probe);
});
afterAll(async () => {
  await probe?.end();
  await db?.drop();
});

interface PlanNode {
  "Relation Name"?: string;
  "Actual Rows"?: number;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
}

/** The activity_log rows the plan's scans read: those they returned and those their filters threw away. */
function rowsRead(node: PlanNode): number {
  const own =
    node["Relation Name"] === "activity_log"
      ? (node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0)
      : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsRead(child), 0);
}

test("a family's page finds its entries, and only them, reading them alone however long the log", async () => {
  statements.length = 0;
  const page = await log.listActivity({ type: "admin.*" });
  expect(page.items.map((item) => item.type)).toEqual([
    "admin.account_set",
    "admin.account_set",
    "admin.account_set",
  ]);
  const listed = statements.find((statement) => statement.query.includes("FROM activity_log"));
  if (!listed) throw new Error("listActivity ran no statement on activity_log");
  // The same statement and parameters, explained; enable_seqscan left on.
  const [explained] = await probe.unsafe(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${listed.query}`,
    listed.parameters as postgres.ParameterOrJSON<never>[],
  );
  const plan = (explained?.["QUERY PLAN"] as Array<{ Plan: PlanNode }> | undefined)?.[0]?.Plan;
  if (!plan) throw new Error("EXPLAIN returned no plan");
  expect(rowsRead(plan)).toBeLessThanOrEqual(10);
});

test("a family with no entries reads nothing", async () => {
  expect((await log.listActivity({ type: "nosuch.*" })).items).toEqual([]);
  expect((await log.listActivity({ type: "admin/x.*" })).items).toEqual([]);
});
