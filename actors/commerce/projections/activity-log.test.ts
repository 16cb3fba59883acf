// The activity log on the real Postgres: append, dedup by id, subject and type filters, pages, append-only, prune.
import { encodeCursor } from "./cursor.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { ActivityLog, subjectsOf } from "./activity-log.ts";
import { event, type TestDatabase, testDatabase } from "./testing.ts";

let db: TestDatabase;
let log: ActivityLog;
const target = "activity/all";

const placed = event(
  "OrderPlaced",
  {
    orderId: "o-1",
    version: 1,
    customerId: "c-1",
    items: [{ sku: "SKU-1", quantity: 1 }],
    placedAt: "2026-01-01T00:00:00.000Z",
  },
  { target },
);
const stock = event(
  "StockChanged",
  { sku: "SKU-1", version: 7, available: 3, reserved: 1, sold: 0, priceCents: 5 },
  {
    target,
  },
);
const rejected = event(
  "OrderRejected",
  { orderId: "o-2", version: 3, customerId: "c-2", reason: "out_of_stock", skus: ["SKU-2"] },
  { target },
);
const authFailed = event(
  "security.auth_failed",
  { reason: "bad signature", ip: "203.0.113.9" },
  {
    subject: "client:203.0.113.9",
  },
);

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    return error instanceof EdgewiseError ? String(error.code) : `not an EdgewiseError: ${error}`;
  }
  return "no error";
}

async function failure(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return "no error";
}

const types = (items: Envelope[]) => items.map((item) => item.type);

beforeAll(async () => {
  db = await testDatabase("activity");
  log = new ActivityLog(db.sql);
  await Promise.all([log.migrate(), log.migrate()]);
  for (const envelope of [placed, stock, rejected])
    expect((await log.receive(envelope)).duplicate).toBe(false);
  expect((await log.recordActivity(authFailed)).duplicate).toBe(false);
});
afterAll(async () => {
  await db?.drop();
});

describe("appending", () => {
  test("a redelivery is a duplicate and writes nothing", async () => {
    const again = await log.receive(placed);
    expect(again).toEqual({ duplicate: true, reply: { seq: undefined } });
    const [{ count } = { count: -1 }] = await db.sql<{ count: number }[]>`
      SELECT count(*)::int AS count FROM activity_log WHERE id = ${placed.id}`;
    expect(count).toBe(1);
  });

  test("the stored CloudEvent is the event without its delivery target", async () => {
    const { items } = await log.listActivity({ type: "OrderPlaced" });
    const { target: _, ...expected } = placed;
    expect(items).toEqual([expected]);
  });

  test("subjects: the envelope's subject and the ids its data names", () => {
    expect(subjectsOf(placed).sort()).toEqual(["SKU-1", "c-1", "o-1"]);
    expect(subjectsOf(rejected).sort()).toEqual(["SKU-2", "c-2", "o-2"]);
    expect(subjectsOf(authFailed)).toEqual(["client:203.0.113.9"]);
  });

  test("an invalid envelope is envelope.invalid; NUL and lone surrogates survive as U+FFFD", async () => {
    expect(await codeOf(log.recordActivity({ ...authFailed, id: "x-1", time: "soon" }))).toBe(
      "envelope.invalid",
    );
    const odd = event("security.odd", { text: "a\u0000b\uD800c" });
    expect((await log.recordActivity(odd)).duplicate).toBe(false);
    const { items } = await log.listActivity({ type: "security.odd" });
    expect(items[0]?.data).toEqual({ text: "a\uFFFDb\uFFFDc" });
  });
});

describe("envelopes recorded together", () => {
  test("are one batch: each stored once, positions in call order, duplicates reported per call", async () => {
    const fresh = Array.from({ length: 8 }, (_, n) => event("security.batch", { n }, { subject: "batch:1" }));
    const results = await Promise.all([
      ...fresh.map((envelope) => log.recordActivity(envelope)),
      log.recordActivity(fresh[0] as Envelope), // the same id again, in the same batch
      log.recordActivity(placed), // already stored
    ]);
    expect(results.map((r) => r.duplicate)).toEqual([...fresh.map(() => false), true, true]);
    const positions = results.slice(0, fresh.length).map((r) => BigInt(r.seq as string));
    expect(positions).toEqual([...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(new Set(positions).size).toBe(fresh.length);
    const { items } = await log.listActivity({ subject: "batch:1", limit: 100 });
    expect(items.map((item) => (item.data as { n: number }).n)).toEqual([7, 6, 5, 4, 3, 2, 1, 0]);
  });

  test("a row Postgres refuses fails its own call only", async () => {
    const good = [
      event("security.batch", { n: 1 }, { subject: "batch:2" }),
      event("security.batch", { n: 2 }, { subject: "batch:2" }),
    ];
    // Passes the envelope schema, but text with NUL is refused by Postgres.
    const bad = event("security.batch", { n: 3 }, { subject: "batch:\u0000two" });
    const [first, refused, second] = await Promise.allSettled([
      log.recordActivity(good[0] as Envelope),
      log.recordActivity(bad),
      log.recordActivity(good[1] as Envelope),
    ]);
    expect(first).toMatchObject({ status: "fulfilled", value: { duplicate: false } });
    expect(second).toMatchObject({ status: "fulfilled", value: { duplicate: false } });
    expect(refused?.status).toBe("rejected");
    const { items } = await log.listActivity({ subject: "batch:2" });
    expect(items.map((item) => (item.data as { n: number }).n)).toEqual([2, 1]);
  });
});

describe("listActivity", () => {
  test("newest first; filter by type", async () => {
    const all = await log.listActivity({});
    expect(types(all.items).slice(-4)).toEqual([
      "security.auth_failed",
      "OrderRejected",
      "StockChanged",
      "OrderPlaced",
    ]);
    expect(types((await log.listActivity({ type: "StockChanged" })).items)).toEqual(["StockChanged"]);
    expect((await log.listActivity({ type: "Nothing" })).items).toEqual([]);
  });

  test("filter by a family of types: `security.*` is every type starting with `security.`", async () => {
    const all = types((await log.listActivity({ limit: 100 })).items);
    const family = types((await log.listActivity({ type: "security.*", limit: 100 })).items);
    expect(family).toContain("security.auth_failed");
    expect(family).toEqual(all.filter((type) => type.startsWith("security.")));
    expect(family.length).toBeLessThan(all.length);
    // The dot is part of the prefix: `Order.*` is not `OrderPlaced`, and `security*` is no family.
    expect((await log.listActivity({ type: "Order.*" })).items).toEqual([]);
    for (const type of ["security*", "*", ".*", "a.*.b", "admin.**"]) {
      expect(await codeOf(log.listActivity({ type }))).toBe("request.invalid");
    }
  });

  test("filter by subject: envelope subject, orderId, customerId, sku (also inside lines)", async () => {
    expect(types((await log.listActivity({ subject: "client:203.0.113.9" })).items)).toEqual([
      "security.auth_failed",
    ]);
    expect(types((await log.listActivity({ subject: "o-2" })).items)).toEqual(["OrderRejected"]);
    expect(types((await log.listActivity({ subject: "c-1" })).items)).toEqual(["OrderPlaced"]);
    expect(types((await log.listActivity({ subject: "SKU-1" })).items)).toEqual([
      "StockChanged",
      "OrderPlaced",
    ]);
    expect(types((await log.listActivity({ subject: "SKU-1", type: "OrderPlaced" })).items)).toEqual([
      "OrderPlaced",
    ]);
    expect((await log.listActivity({ subject: "nobody" })).items).toEqual([]);
  });

  test("pages: a cursor round trip without duplicates or gaps, also with a filter", async () => {
    for (let i = 0; i < 11; i++) {
      await log.recordActivity(event("security.auth_failed", { n: i }, { subject: "client:pages" }));
    }
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await log.listActivity({
        subject: "client:pages",
        limit: 4,
        ...(cursor ? { cursor } : {}),
      });
      seen.push(...page.items.map((item) => (item.data as { n: number }).n));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  test("bad queries are request.invalid; a pool with int8 as strings reads the same", async () => {
    const overflow = encodeCursor({ s: "9223372036854775808" }); // one past int8
    for (const query of [
      { limit: 0 },
      { subject: "" },
      { cursor: "%%%" },
      { cursor: "eyJzIjoiMCJ9" },
      { cursor: overflow },
    ]) {
      expect(await codeOf(log.listActivity(query))).toBe("request.invalid");
    }
    const plain = new ActivityLog(db.plain);
    expect(await plain.listActivity({ limit: 3 })).toEqual(await log.listActivity({ limit: 3 }));
  });
});

describe("append-only", () => {
  test("UPDATE, DELETE and TRUNCATE raise", async () => {
    expect(await failure(db.sql`UPDATE activity_log SET type = 'x'`)).toContain("append-only");
    expect(await failure(db.sql`DELETE FROM activity_log WHERE id = ${placed.id}`)).toContain("append-only");
    expect(await failure(db.sql`TRUNCATE activity_log`)).toContain("append-only");
    expect((await log.listActivity({ type: "OrderPlaced" })).items).toHaveLength(1);
  });

  test("pruneActivity deletes by age in batches; the bypass ends with its transactions", async () => {
    for (let i = 0; i < 5; i++) {
      await db.sql`
        INSERT INTO activity_log (id, type, source, time, envelope, recorded_at)
        VALUES (${`old-${i}`}, 'Old', 'edgewise://test', now(), '{"type":"Old"}', now() - interval '40 days')`;
    }
    const before = await log.listActivity({ limit: 100 });
    expect(await log.pruneActivity({ olderThan: Date.now() - 30 * 86_400_000, batchSize: 2 })).toBe(5);
    expect((await log.listActivity({ type: "Old" })).items).toEqual([]);
    expect((await log.listActivity({ limit: 100 })).items).toEqual(
      before.items.filter((e) => e.type !== "Old"),
    );
    expect(await log.pruneActivity({ olderThan: Date.now() - 30 * 86_400_000 })).toBe(0);
    expect(await failure(db.sql`DELETE FROM activity_log`)).toContain("append-only");
  });
});
