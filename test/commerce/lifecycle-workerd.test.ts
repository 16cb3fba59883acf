// The order lifecycle on Durable Objects: the production Worker (root wrangler.toml) under `wrangler dev`, with the
// local broker and the real Postgres, each on a schema of its own, and the real Redis through the Upstash REST bridge.
// Only 127.0.0.1.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import postgres from "postgres";
import { recordAgedActivity } from "../../actors/commerce/projections/testing.ts";
import type { RedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";
import { parseMetrics } from "../observability/metrics-scrape.ts";
import { startTestBridge } from "../redis-bridge/helpers.ts";
import { eventually, uniqueName } from "./client.ts";
import { consoleWorkerdSuite } from "./console-workerd.ts";
import { lifecycleEnv, lifecycleSuite } from "./lifecycle.ts";
import { type CommerceWorker, startCommerceWorker } from "./workerd-node.ts";

let running: CommerceWorker | undefined;
let bridge: RedisBridge | undefined;

beforeAll(async () => {
  // Upstash's REST API over the real Redis, as a deployed Worker would have it: the read cache and the rate
  // limiter's shared count.
  bridge = await startTestBridge();
  // EDGEWISE_ACTIVITY_RETENTION and --test-scheduled: the cron's activity-log pruning, tested below.
  running = await startCommerceWorker(
    "commerce_cf",
    {
      ...lifecycleEnv,
      EDGEWISE_ACTIVITY_RETENTION: "1h",
      UPSTASH_REDIS_REST_URL: bridge.url,
      UPSTASH_REDIS_REST_TOKEN: bridge.token,
    },
    ["--test-scheduled"],
  );
}, 60_000);

afterAll(async () => {
  await running?.stop();
  await bridge?.stop();
});

lifecycleSuite("workerd", () => (running as CommerceWorker).client);
consoleWorkerdSuite(() => running as CommerceWorker);

/** The tables in each object's SQLite file of one class (Inventory, Order), as workerd persists them under wrangler dev. */
function storedObjects(persistTo: string, className: string): Map<string, string[]> {
  const dir = join(persistTo, "v3", "do", `edgewise-${className}`);
  const objects = new Map<string, string[]>();
  if (!existsSync(dir)) return objects;
  for (const file of readdirSync(dir).filter((name) => /^[0-9a-f]{64}\.sqlite$/.test(name))) {
    const db = new Database(join(dir, file), { readonly: true });
    try {
      // workerd may be writing another object's file (or this one) right now: wait for its lock, not SQLITE_BUSY
      // (CI on 02cded3 read a file mid-write: "database is locked").
      db.exec("PRAGMA busy_timeout = 5000");
      const rows = db
        .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all();
      // Miniflare's own record of the object's name, written by local development only.
      objects.set(
        file,
        rows.map((row) => row.name).filter((name) => !name.startsWith("__miniflare")),
      );
    } finally {
      db.close();
    }
  }
  return objects;
}

test("reading skus that were never set leaves no stored Durable Object behind (workerd)", async () => {
  const { client, persistTo } = running as CommerceWorker;
  const stored = () =>
    [...storedObjects(persistTo, "Inventory").values()].filter((tables) => tables.length > 0).length;
  const before = stored();
  for (let i = 0; i < 5; i++)
    expect((await client.call("GET", `/v1/inventory/${uniqueName("never-set")}`)).status).toBe(404);
  expect(stored()).toBe(before);
  // A write still creates the object's tables, and the read after it finds the sku.
  const sku = uniqueName("set-once");
  await client.putSku(sku, 3, 100);
  expect(stored()).toBe(before + 1);
  expect(await client.sku(sku)).toMatchObject({ available: 3 });
}, 30_000);

test("reading or cancelling orders never placed answers 404 and leaves no stored Durable Object, nor an alarm (workerd)", async () => {
  // The Durable Object host ignores `onlyIfState` (a stub cannot tell without activating its object), so the order
  // is asked: under wrangler dev each id gets an object (and a file holding only Miniflare's record of its name), but
  // its Get throws not_found, a turn that throws commits nothing, and so it creates no table and sets no alarm
  // (workerd keeps an object's alarm in its own `_cf_METADATA` table, which the count includes).
  const { client, persistTo } = running as CommerceWorker;
  const objects = () => [...storedObjects(persistTo, "Order")].filter(([, tables]) => tables.length > 0);
  const before = new Set(objects().map(([file]) => file));
  for (let i = 0; i < 3; i++) {
    const orderId = uniqueName("never-placed");
    expect(await client.call("GET", `/v1/orders/${orderId}`)).toMatchObject({
      status: 404,
      body: { code: "not_found" },
    });
    expect((await client.call("POST", `/v1/orders/${orderId}/cancel`)).status).toBe(404);
  }
  expect(objects().length).toBe(before.size);
  // The count sees a write: a placed order's commit creates its object's tables, and its outbox an alarm.
  const placed = await client.place(uniqueName("placer"), [{ sku: uniqueName("no-such-sku"), quantity: 1 }]);
  expect(placed.status).toBe(202);
  const created = objects().filter(([file]) => !before.has(file));
  expect(created).toHaveLength(1);
  expect(created[0]?.[1]).toEqual(expect.arrayContaining(["state", "inbox", "_cf_METADATA"]));
}, 30_000);

test("the cron prunes the activity log past EDGEWISE_ACTIVITY_RETENTION, the webhook attempt log past EDGEWISE_WEBHOOK_ATTEMPT_RETENTION and inbound webhook ids past replay, as a node does; newer entries stay", async () => {
  const worker = running as CommerceWorker;
  const sql = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: worker.schema },
  });
  try {
    const prefix = uniqueName("aged");
    await recordAgedActivity(sql, {
      type: "AgedTest",
      count: 3,
      ageMs: 2 * 3_600_000,
      prefix: `${prefix}-old`,
    });
    await recordAgedActivity(sql, { type: "AgedTest", count: 2, ageMs: 60_000, prefix: `${prefix}-new` });
    // Attempts a day either side of the default 30 days (the cron's first run in this isolate prunes them too).
    await sql`
      INSERT INTO webhook_deliveries (subscription_id, event_id, attempt, outcome, at) VALUES
        (${`${prefix}-sub`}, 'old', 1, 'delivered', now() - interval '31 days'),
        (${`${prefix}-sub`}, 'new', 1, 'delivered', now() - interval '29 days')`;
    // Inbound ids either side of twice the 5-minute tolerance, with no webhook arriving to prune them.
    await sql`
      INSERT INTO webhook_inbound_seen (source, webhook_id, received_at) VALUES
        (${prefix}, 'old', now() - interval '11 minutes'), (${prefix}, 'new', now() - interval '9 minutes')`;
    // wrangler dev runs the scheduled handler on this request (--test-scheduled), as Cloudflare does each minute.
    const cron = await fetch(`${worker.worker.match}/__scheduled?cron=*+*+*+*+*`);
    expect(cron.status).toBe(200);
    const left = await sql<Array<{ id: string }>>`
      SELECT id FROM activity_log WHERE id LIKE ${`${prefix}-%`} ORDER BY id`;
    // Before, a Worker ignored the setting: all five stayed.
    expect(left.map((row) => row.id)).toEqual([`${prefix}-new-1`, `${prefix}-new-2`]);
    const attempts = await sql<Array<{ event_id: string }>>`
      SELECT event_id FROM webhook_deliveries WHERE subscription_id = ${`${prefix}-sub`}`;
    // Before, the attempt log was never pruned: both stayed.
    expect(attempts.map((row) => row.event_id)).toEqual(["new"]);
    const inbound = await sql<Array<{ webhook_id: string }>>`
      SELECT webhook_id FROM webhook_inbound_seen WHERE source = ${prefix}`;
    // Before, they stayed until an accepted webhook reached an isolate: both stayed.
    expect(inbound.map((row) => row.webhook_id)).toEqual(["new"]);
  } finally {
    await sql.end();
  }
});

test("/metrics on the Worker counts what a node's does: billing's payments, rate-limit decisions, read-cache hits", async () => {
  const { client } = running as CommerceWorker;
  // wrangler dev runs one isolate, so its /metrics sees every request below (a deployed Worker's is per isolate).
  const scrape = async () => {
    const response = await fetch(`${client.target.base}/metrics`, {
      headers: { authorization: `Bearer ${lifecycleEnv.METRICS_TOKEN}` },
    });
    expect(response.status).toBe(200);
    return parseMetrics(await response.text());
  };
  const counts = async () => {
    const scraped = await scrape();
    return {
      captured: scraped.value("edgewise_billing_payments_total", { outcome: "captured" }),
      allowed: scraped.value("edgewise_rate_limit_decisions_total", { decision: "allowed" }),
      cacheHits: scraped.value("edgewise_read_cache_hits_total", { cache: "reads" }),
    };
  };
  const before = await counts();
  const [sku, customer] = [uniqueName("metered"), uniqueName("meterer")];
  await client.putSku(sku, 5, 100);
  await client.putAccount(customer, 1_000);
  const placed = await client.place(customer, [{ sku, quantity: 1 }]);
  expect((await client.settle(placed.body.orderId)).status).toBe("confirmed");
  // A read fills the cache, and the next one is a hit. The sale commits at the sku after the order is confirmed,
  // and its StockChanged drops what a read filled before it: a fill then, and a read after that event, is a miss.
  // Read until a hit, as the other read-cache tests do.
  await eventually(
    async () => (await client.call("GET", `/v1/inventory/${sku}`)).headers.get("x-cache") === "hit",
    "a read-cache hit",
  );

  const after = await counts();
  // Before, the Worker wired neither the rate limiter's decisions nor its read cache to /metrics: both stayed 0.
  expect(after.captured).toBeGreaterThanOrEqual(before.captured + 1);
  expect(after.allowed).toBeGreaterThanOrEqual(before.allowed + 6);
  expect(after.cacheHits).toBeGreaterThanOrEqual(before.cacheHits + 1);
}, 30_000);
