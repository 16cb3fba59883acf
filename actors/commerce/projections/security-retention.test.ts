// Security events leave the activity log after their retention; domain events, and recent security events, stay.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ManualClock } from "../../../shared/clock/index.ts";
import { securityEventPruner, securityEventRetentionMs, securityEventTypes } from "./security-retention.ts";
import { type ActivityLogTestDatabase, activityLogDatabase } from "./testing.ts";

let db: ActivityLogTestDatabase;

beforeAll(async () => {
  db = await activityLogDatabase("security_retention");
});
afterAll(() => db.drop());

const day = 86_400_000;
const recorded: ActivityLogTestDatabase["recorded"] = (...args) => db.recorded(...args);
const typesLeft = () => db.typesLeft();

test("a flood of old security events is pruned past the retention; domain events and recent ones stay", async () => {
  // 2,000 old ones of every kind, more than one batch each: what a long attack leaves behind.
  for (const type of securityEventTypes) {
    await recorded(type, 2_000, securityEventRetentionMs + day, `old-${type}`);
    await recorded(type, 3, securityEventRetentionMs - day, `recent-${type}`);
  }
  await recorded("OrderPlaced", 4, 90 * day, "old-domain");
  expect(securityEventTypes.length).toBeGreaterThanOrEqual(5);

  const prune = securityEventPruner(db.log, { onError: (error) => console.error(error) });
  await prune(Date.now());

  const left = await typesLeft();
  for (const type of securityEventTypes) expect(left[type]).toBe(3);
  expect(left.OrderPlaced).toBe(4);
  // The log is append-only again once the pruning is done.
  expect(await db.sql`DELETE FROM activity_log`.catch((error: Error) => error.message)).toContain(
    "append-only",
  );
});

test("a wall clock stepped back a day does not stop the pruning for the day: the next call prunes", async () => {
  const clock = new ManualClock(Date.now());
  const prune = securityEventPruner(db.log, { everyMs: 60_000 });
  await prune(clock.now());
  await recorded("security.auth_failed", 10, securityEventRetentionMs + 2 * day, "stepped");
  clock.step(-day);
  clock.advance(1_000);
  await prune(clock.now());
  // The cutoff is wall time, a day earlier now: these are 8 days old by it, past the 7 kept.
  expect((await typesLeft())["security.auth_failed"]).toBe(3);
  expect(prune(clock.now() + 59_000)).toBeUndefined();
});

test("it prunes at most once per interval, so a flood of events costs one query an interval", async () => {
  const prune = securityEventPruner(db.log, { everyMs: 60_000 });
  const start = Date.now();
  await prune(start);
  await recorded("security.auth_failed", 10, securityEventRetentionMs + day, "later");
  for (let i = 1; i < 50_000; i++) expect(prune(start + i)).toBeUndefined();
  expect((await typesLeft())["security.auth_failed"]).toBe(13);
  await prune(start + 60_000);
  expect((await typesLeft())["security.auth_failed"]).toBe(3);
});
