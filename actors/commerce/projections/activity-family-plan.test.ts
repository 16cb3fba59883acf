// GET /v1/activity?type=<family>.* reads its family's entries by index, not the log newest first until a page is full.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ActivityLog } from "./activity-log.ts";
import { type PlanProbe, planProbe } from "./plan-probe.ts";
import { type ActivityLogTestDatabase, activityLogDatabase } from "./testing.ts";

const others = 20_000;
let db: ActivityLogTestDatabase;
let probe: PlanProbe;
let log: ActivityLog;

beforeAll(async () => {
  db = await activityLogDatabase("family_plan");
  // The family's entries are the oldest, the rest of the log after them; beside them, types just outside the range.
  await db.recorded("admin.account_set", 3, 0, "admin");
  await db.recorded("admin", 1, 0, "bare");
  await db.recorded("admin/x", 1, 0, "slash");
  await db.recorded("adminx.y", 1, 0, "adminx");
  await db.recorded("OrderPlaced", others, 0, "order");
  await db.sql`ANALYZE activity_log`;
  probe = await planProbe(db.sql);
  log = new ActivityLog(probe.sql);
});
afterAll(async () => {
  await probe?.end();
  await db?.drop();
});

test("a family's page finds its entries, and only them, reading them alone however long the log", async () => {
  probe.reset();
  const page = await log.listActivity({ type: "admin.*" });
  expect(page.items.map((item) => item.type)).toEqual([
    "admin.account_set",
    "admin.account_set",
    "admin.account_set",
  ]);
  // The same statement and parameters, explained; enable_seqscan left on.
  expect(await probe.rowsRead("activity_log")).toBeLessThanOrEqual(10);
});

test("a family with no entries reads nothing", async () => {
  expect((await log.listActivity({ type: "nosuch.*" })).items).toEqual([]);
  expect((await log.listActivity({ type: "admin/x.*" })).items).toEqual([]);
});
