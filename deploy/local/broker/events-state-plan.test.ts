// GET /v2/events?state=… reads the rows of that state, or a page's worth of the log, not the whole event log.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type PlanProbe, planProbe } from "../../../actors/commerce/projections/plan-probe.ts";
import { type TestDatabase, testDatabase } from "../../../actors/commerce/projections/testing.ts";
import { migrate } from "./db.ts";
import { type EventCursor, listEvents, parseEventCursor } from "./store-events.ts";
import type { EventRow } from "./types.ts";

const total = 20_000;
/** FAILED is rare, and its rows the oldest: a state nothing has reached lately. */
const failedOnes = 5;
const start = Date.UTC(2026, 0, 1);
let db: TestDatabase;
let probe: PlanProbe;

beforeAll(async () => {
  db = await testDatabase("broker_events_state_plan");
  await migrate(db.sql);
  // A row every 30 s: DELIVERED carrying its CREATED and ACTIVE events, RETRY carrying its ACTIVE (1%), FAILED for
  // the first few messages.
  await db.sql`
    INSERT INTO qstash_events (time, message_id, state, url, response_status, created_time, created_due,
      active_time)
    SELECT ${start}::bigint + i * 30000, 'msg_' || i, s.state, 'http://127.0.0.1:1/hook', 200,
      CASE WHEN s.state = 'DELIVERED' THEN ${start}::bigint + i * 30000 - 20 END,
      CASE WHEN s.state = 'DELIVERED' THEN ${start}::bigint + i * 30000 - 20 END,
      ${start}::bigint + i * 30000 - 10
    FROM generate_series(1, ${total}::int) AS i,
    LATERAL (SELECT CASE WHEN i <= ${failedOnes}::int THEN 'FAILED' WHEN i % 100 = 1 THEN 'RETRY'
      ELSE 'DELIVERED' END AS state) AS s`;
  await db.sql`ANALYZE qstash_events`;
  probe = await planProbe(db.sql);
});
afterAll(async () => {
  await probe?.end();
  await db?.drop();
});

const key = (event: EventRow) => `${event.message_id}/${event.state}/${event.time}`;

test("a state no message reached lately is read by its own rows, not the log newest first", async () => {
  const page = await listEvents(db.sql, { states: ["FAILED"], count: 100 });
  expect(page.rows.map(key)).toEqual(
    Array.from(
      { length: failedOnes },
      (_, n) => `msg_${failedOnes - n}/FAILED/${start + (failedOnes - n) * 30000}`,
    ),
  );
  probe.reset();
  await listEvents(probe.sql, { states: ["FAILED"], count: 100 });
  // Both statements, explained with their parameters: the state's rows, not 20,000 (twice).
  expect(await probe.rowsRead("qstash_events")).toBeLessThanOrEqual(2 * failedOnes);
});

test("a state the rows carry (ACTIVE) reads a page's worth of the log, and its pages add up to every such event", async () => {
  probe.reset();
  await listEvents(probe.sql, { states: ["ACTIVE"], count: 100 });
  // A page of 100 and the one after it, in each statement (rows carry ACTIVE, few have it as their own state).
  expect(await probe.rowsRead("qstash_events")).toBeLessThanOrEqual(2 * 110);

  const paged: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listEvents(db.sql, {
      states: ["ACTIVE"],
      count: 1000,
      ...(cursor === undefined ? {} : { cursor: parseEventCursor(cursor) as EventCursor }),
    });
    paged.push(...page.rows.map(key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  expect(paged).toHaveLength(total);
  expect(paged[0]).toBe(`msg_${total}/ACTIVE/${start + total * 30000 - 10}`);
  expect(paged.at(-1)).toBe(`msg_1/ACTIVE/${start + 30000 - 10}`);
});
