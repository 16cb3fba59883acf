// The event log: one row per delivered message, the same events as one row per event would give, newest first
// by time, pages that add up to the whole log; and the embedded maintenance (VACUUM/ANALYZE).
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { resolveOptions } from "./config.ts";
import { connect, migrate, recoverInFlight, recoverOrphans, type Sql } from "./db.ts";
import { Maintenance } from "./maintenance.ts";
import { eventRows, FOLD_WINDOW_MS, listEvents, parseEventCursor } from "./store-events.ts";
import { cancelMessages, claimDue, insertMessages } from "./store-messages.ts";
import { recordOutcomes } from "./store-outcomes.ts";
import type { EventRow, MessageRow, NewMessage, Outcome } from "./types.ts";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `broker_events_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
let sql: Sql;
let n = 0;

function message(overrides: Partial<NewMessage> = {}): NewMessage {
  const now = Date.now();
  return {
    id: `msg_test_${n++}`,
    url: "http://127.0.0.1:1/hook",
    method: "POST",
    headers: {},
    body: new TextEncoder().encode("x"),
    queueName: null,
    maxRetries: 3,
    timeoutMs: 60_000,
    dueAt: now,
    notBefore: null,
    createdAt: now,
    callerIp: null,
    dedupKey: null,
    ...overrides,
  };
}

const publish = async (...messages: NewMessage[]) => {
  await insertMessages(sql, messages, 600_000);
  return messages.map((m) => m.id);
};
const claim = (limit = 100) => claimDue(sql, limit, Date.now());
const delivered = (rows: MessageRow[]): Outcome[] =>
  rows.map((m) => ({ kind: "delivered", message: m, status: 200 }));
const states = async (id: string) =>
  (await listEvents(sql, { messageIds: [id], count: 100 })).rows.map((e) => e.state).reverse();
const eventRowCount = async () => Number((await sql`SELECT count(*) AS c FROM qstash_events`)[0]?.c);

beforeAll(async () => {
  sql = await connect({ url: DATABASE_URL, max: 2, schema });
  await migrate(sql);
});

beforeEach(async () => {
  await sql`TRUNCATE qstash_messages, qstash_events, qstash_dedup, qstash_dlq, qstash_queues`;
});

afterAll(async () => {
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await sql.end();
});

describe("one row per delivered message", () => {
  test("waiting, under way and delivered: CREATED, ACTIVE and DELIVERED, from one row in the end", async () => {
    const [id = ""] = await publish(message());
    expect(await states(id)).toEqual(["CREATED"]);
    const [created] = (await listEvents(sql, { messageIds: [id], count: 10 })).rows;
    expect(created?.next_delivery_time).toBeNumber();
    expect(await eventRowCount()).toBe(0);

    const claimed = await claim();
    expect(await states(id)).toEqual(["CREATED", "ACTIVE"]);
    await recordOutcomes(sql, delivered(claimed), () => "dlq_x");
    expect(await states(id)).toEqual(["CREATED", "ACTIVE", "DELIVERED"]);
    expect(await eventRowCount()).toBe(1);
    const [last] = (await listEvents(sql, { messageIds: [id], count: 1 })).rows;
    expect(last).toMatchObject({ state: "DELIVERED", response_status: 200, url: "http://127.0.0.1:1/hook" });
  });

  test("events older than the fold window get rows of their own, with their own times", async () => {
    const long = Date.now() - FOLD_WINDOW_MS - 5_000;
    const [id = ""] = await publish(message({ createdAt: long, dueAt: long }));
    await recordOutcomes(sql, delivered(await claim()), () => "dlq_x");
    const events = (await listEvents(sql, { messageIds: [id], count: 10 })).rows.reverse();
    expect(events.map((e) => e.state)).toEqual(["CREATED", "ACTIVE", "DELIVERED"]);
    expect(events[0]?.time).toBe(long);
    expect(await eventRowCount()).toBe(2);
  });

  test("retries, a dead letter, a cancel and a crash log every state", async () => {
    const [retried = "", failed = "", cancelled = "", interrupted = ""] = await publish(
      message(),
      message(),
      message({ dueAt: Date.now() + 3_600_000 }),
      message(),
    );
    const first = await claim();
    const byId = new Map(first.map((m) => [m.id, m]));
    const retry: Outcome = {
      kind: "retry",
      message: byId.get(retried) as MessageRow,
      status: 500,
      error: "destination answered 500",
      dueAt: Date.now(),
    };
    const dead: Outcome = {
      kind: "failed",
      message: byId.get(failed) as MessageRow,
      status: 489,
      error: "destination answered 489 (Upstash-NonRetryable-Error)",
      responseHeaders: null,
      responseBody: null,
    };
    await recordOutcomes(sql, [retry, dead], () => "dlq_test");
    expect(await states(retried)).toEqual(["CREATED", "ACTIVE", "ERROR", "RETRY"]);
    expect(await states(failed)).toEqual(["CREATED", "ACTIVE", "ERROR", "FAILED"]);
    await recordOutcomes(sql, delivered(await claim()), () => "dlq_x");
    expect(await states(retried)).toEqual(["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "DELIVERED"]);

    expect(await cancelMessages(sql, { messageIds: [cancelled] })).toBe(1);
    expect(await states(cancelled)).toEqual(["CREATED", "CANCELED"]);

    // `interrupted` is still active from the first claim: the broker "restarts".
    expect(await recoverInFlight(sql)).toBe(1);
    expect(await states(interrupted)).toEqual(["CREATED", "ACTIVE", "ERROR"]);
    const [error] = (await listEvents(sql, { messageIds: [interrupted], count: 1 })).rows;
    expect(error?.error).toContain("interrupted");
    const again = await claim();
    expect(again.map((m) => m.id)).toEqual([interrupted]);
    expect(again[0]?.attempts).toBe(2);
    await recordOutcomes(sql, delivered(again), () => "dlq_x");
    expect(await states(interrupted)).toEqual(["CREATED", "ACTIVE", "ERROR", "ACTIVE", "DELIVERED"]);
  });

  test("a message publish stores as active at once: no claim, the same events", async () => {
    const [started, waiting] = [message(), message()];
    const { accepted, started: rows } = await insertMessages(
      sql,
      [started, waiting],
      600_000,
      new Set([started.id]),
    );
    expect(accepted.map((a) => a.messageId)).toEqual([started.id, waiting.id]);
    expect(rows.map((m) => [m.id, m.state, m.attempts])).toEqual([[started.id, "active", 1]]);
    expect(await states(started.id)).toEqual(["CREATED", "ACTIVE"]);
    expect((await claim()).map((m) => m.id)).toEqual([waiting.id]);
    await recordOutcomes(sql, delivered(rows), () => "dlq_x");
    expect(await states(started.id)).toEqual(["CREATED", "ACTIVE", "DELIVERED"]);
  });

  test("orphans of a lost reply go back to pending, uncounted; held and newer active messages stay", async () => {
    const [orphan, held, newer] = [message(), message(), message()];
    await publish(orphan, held);
    const claimed = await claim(); // its reply "lost" for `orphan`; `held` is being delivered
    const upTo = Date.now();
    await Bun.sleep(2);
    await publish(newer);
    await claim(); // after the failure: not covered by it
    expect(await recoverOrphans(sql, upTo, [held.id])).toBe(1);
    const rows = await sql`SELECT id, state, attempts FROM qstash_messages ORDER BY id`;
    expect(rows.map((r) => [r.id, r.state, r.attempts])).toEqual(
      [
        [orphan.id, "pending", 0],
        [held.id, "active", 1],
        [newer.id, "active", 1],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    expect(await states(orphan.id)).toEqual(["CREATED", "ACTIVE", "ERROR"]);
    const [error] = (await listEvents(sql, { messageIds: [orphan.id], count: 1 })).rows;
    expect(error?.error).toContain("not attempted");
    const again = await claim();
    expect(again.map((m) => [m.id, m.attempts])).toEqual([[orphan.id, 1]]);
    await recordOutcomes(sql, delivered([...claimed.filter((m) => m.id === held.id), ...again]), () => "x");
    expect(await states(orphan.id)).toEqual(["CREATED", "ACTIVE", "ERROR", "ACTIVE", "DELIVERED"]);
  });

  test("a retry outcome written again after its reply was lost changes nothing, even once claimed again", async () => {
    const [id] = await publish(message());
    const [first] = await claim();
    const retry: Outcome = {
      kind: "retry",
      message: first as MessageRow,
      dueAt: Date.now(),
      status: 500,
      error: "destination answered 500",
    };
    await recordOutcomes(sql, [retry], () => "x");
    const [second] = await claim(); // the retry is due: claimed again, under way
    expect(second?.attempts).toBe(2);
    await recordOutcomes(sql, [retry], () => "x"); // the first write's reply was lost: written again
    const [row] = await sql`SELECT state, attempts FROM qstash_messages WHERE id = ${id as string}`;
    expect(row).toEqual({ state: "active", attempts: 2 });
    expect(await states(id as string)).toEqual(["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE"]);
  });

  test("eventRows: a logged message carries no CREATED; a pending one no ACTIVE", () => {
    const now = Date.now();
    const base = { id: "m", url: "u", queue_name: null, created_at: now - 10, due_at: now - 10 };
    const logged = eventRows({ ...base, logged: true, active_at: now - 5 }, [{ state: "DELIVERED" }], now);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ created_time: null, active_time: now - 5 });
    const pending = eventRows({ ...base, logged: false, active_at: null }, [{ state: "CANCELED" }], now);
    expect(pending[0]).toMatchObject({ created_time: now - 10, created_due: now - 10, active_time: null });
  });
});

describe("listing", () => {
  /** 30 messages in various states, events spread over time: the log as one row per event would give it. */
  async function history(): Promise<EventRow[]> {
    const base = Date.now() - 60_000;
    for (let i = 0; i < 30; i++) {
      const at = base + i * 1_500; // some fold, some (created long before delivery) do not
      await publish(message({ createdAt: at, dueAt: at, url: `http://127.0.0.1:1/${i % 3}` }));
      if (i % 4 === 0) await recordOutcomes(sql, delivered(await claim(2)), () => "dlq_x");
    }
    await claim(3); // some left under way, the rest waiting
    return (await listEvents(sql, { count: 1000 })).rows;
  }

  const key = (e: EventRow) => `${e.message_id}/${e.state}/${e.time}`;

  test("newest first, and pages that add up to the whole log", async () => {
    const all = await history();
    expect(all.length).toBeGreaterThan(60);
    const times = all.map((e) => e.time);
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(new Set(all.map(key)).size).toBe(all.length);

    for (const count of [1, 3, 7]) {
      const paged: EventRow[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 200; page++) {
        const parsed = cursor === undefined ? undefined : parseEventCursor(cursor);
        const result = await listEvents(sql, { count, ...(parsed ? { cursor: parsed } : {}) });
        paged.push(...result.rows);
        cursor = result.cursor;
        if (cursor === undefined) break;
        expect(Number(cursor)).toBeGreaterThan(0); // the SDK's doc loops `while (cursor > 0)`
      }
      expect(paged.map(key)).toEqual(all.map(key));
    }
  });

  test("filters: state, url, time range, and a plain time as cursor", async () => {
    const all = await history();
    const created = (await listEvents(sql, { states: ["CREATED"], count: 1000 })).rows;
    expect(created.map(key)).toEqual(all.filter((e) => e.state === "CREATED").map(key));
    expect(created).toHaveLength(30);

    const url = "http://127.0.0.1:1/1";
    const byUrl = (await listEvents(sql, { urls: [url], states: ["ACTIVE", "DELIVERED"], count: 1000 })).rows;
    expect(byUrl.map(key)).toEqual(
      all.filter((e) => e.url === url && (e.state === "ACTIVE" || e.state === "DELIVERED")).map(key),
    );

    const middle = all[Math.floor(all.length / 2)]?.time ?? 0;
    const from = all[all.length - 10]?.time ?? 0;
    const ranged = (await listEvents(sql, { fromDate: from, toDate: middle, count: 1000 })).rows;
    expect(ranged.map(key)).toEqual(all.filter((e) => e.time >= from && e.time <= middle).map(key));

    const before = parseEventCursor(String(middle));
    expect(before).toEqual({ time: middle, key: 0, sub: 0 });
    const older = (await listEvents(sql, { cursor: before as never, count: 1000 })).rows;
    expect(older.map(key)).toEqual(all.filter((e) => e.time < middle).map(key));
    expect(parseEventCursor("12ab")).toBeUndefined();
  });
});

describe("maintenance", () => {
  test("on by default only for a broker that starts its own PGlite", () => {
    expect(resolveOptions({}).maintenance).toEqual({ vacuumEveryMs: 10_000, vacuumEveryOutcomes: 5_000 });
    expect(resolveOptions({ databaseUrl: DATABASE_URL }).maintenance).toBeUndefined();
    expect(resolveOptions({ sql }).maintenance).toBeUndefined();
    expect(resolveOptions({ sql, maintenance: { vacuumEveryMs: 500 } }).maintenance?.vacuumEveryMs).toBe(500);
    expect(resolveOptions({ maintenance: false }).maintenance).toBeUndefined();
  });

  test("vacuums and analyzes the queue table once enough outcomes are in", async () => {
    const maintenance = new Maintenance(sql, { vacuumEveryMs: 60_000, vacuumEveryOutcomes: 200 }, (line) => {
      throw new Error(line);
    });
    maintenance.start();
    try {
      for (let i = 0; i < 3; i++) {
        await publish(...Array.from({ length: 100 }, () => message()));
        const claimed = await claim(100);
        await recordOutcomes(sql, delivered(claimed), () => "dlq_x");
        maintenance.recorded(claimed.length);
      }
      const stats = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        for (let i = 0; i < 100 && maintenance.runs === 0; i++) await Bun.sleep(20);
        expect(maintenance.runs).toBeGreaterThan(0);
        await maintenance.stop();
        expect(maintenance.lastMs.qstash_messages).toBeNumber();
        const [row] = await stats`
          SELECT last_vacuum, last_analyze FROM pg_stat_user_tables
          WHERE schemaname = ${schema} AND relname = 'qstash_messages'`;
        expect(row?.last_vacuum).not.toBeNull();
        expect(row?.last_analyze).not.toBeNull();
      } finally {
        await stats.end();
      }
    } finally {
      await maintenance.stop();
    }
  });

  test("vacuums the other tables of the schema too: on a node's PGlite, the application's", async () => {
    // A queue-like table of the application's (billing's outbox is one): rows inserted, then deleted.
    await sql`CREATE TABLE IF NOT EXISTS app_outbox (seq bigserial PRIMARY KEY, body text NOT NULL)`;
    await sql.begin(async (tx) => {
      await tx`INSERT INTO app_outbox (body) SELECT 'x' FROM generate_series(1, 500)`;
      await tx`DELETE FROM app_outbox`;
      // The counts reach the view when this backend next goes idle, not up to 10 s later.
      await tx`SELECT pg_stat_force_next_flush()`;
    });
    const stats = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
    const row = async () =>
      (
        await stats`
          SELECT n_dead_tup::int AS dead, last_vacuum FROM pg_stat_user_tables
          WHERE schemaname = ${schema} AND relname = 'app_outbox'`
      )[0];
    const maintenance = new Maintenance(
      sql,
      { vacuumEveryMs: 60_000, vacuumEveryOutcomes: 1_000 },
      (line) => {
        throw new Error(line);
      },
    );
    try {
      for (let i = 0; i < 100 && ((await row())?.dead ?? 0) < 500; i++) await Bun.sleep(50);
      expect((await row())?.dead).toBe(500);
      await maintenance.run();
      expect(maintenance.lastMs.app_outbox).toBeNumber();
      for (let i = 0; i < 100 && (await row())?.last_vacuum == null; i++) await Bun.sleep(50);
      expect((await row())?.last_vacuum).not.toBeNull();
      // VACUUM keeps dead rows that a transaction open elsewhere on this shared server may still see (its xmin
      // horizon; another test process holding a transaction for seconds): the next passes remove them once it ends.
      for (let pass = 0; pass < 20 && ((await row())?.dead ?? 0) > 0; pass++) {
        await Bun.sleep(500);
        await maintenance.run();
        await Bun.sleep(100);
      }
      expect((await row())?.dead).toBe(0);
    } finally {
      await maintenance.stop();
      await stats.end();
    }
  });
});
