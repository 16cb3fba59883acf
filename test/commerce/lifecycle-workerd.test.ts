// The order lifecycle on Durable Objects: the production Worker (root wrangler.toml) under `wrangler dev`, with the
// local broker and the real Postgres, each on a schema of its own. Only 127.0.0.1.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import postgres from "postgres";
import { recordAgedActivity } from "../../actors/commerce/projections/testing.ts";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";
import { uniqueName } from "./client.ts";
import { consoleWorkerdSuite } from "./console-workerd.ts";
import { lifecycleEnv, lifecycleSuite } from "./lifecycle.ts";
import { type CommerceWorker, startCommerceWorker } from "./workerd-node.ts";

let running: CommerceWorker | undefined;

beforeAll(async () => {
  // EDGEWISE_ACTIVITY_RETENTION and --test-scheduled: the cron's activity-log pruning, tested below.
  running = await startCommerceWorker("commerce_cf", { ...lifecycleEnv, EDGEWISE_ACTIVITY_RETENTION: "1h" }, [
    "--test-scheduled",
  ]);
}, 60_000);

afterAll(() => running?.stop());

lifecycleSuite("workerd", () => (running as CommerceWorker).client);
consoleWorkerdSuite(() => running as CommerceWorker);

/** The tables in each Inventory object's SQLite file, as workerd persists them under wrangler dev. */
function inventoryObjects(persistTo: string): Map<string, string[]> {
  const dir = join(persistTo, "v3", "do", "edgewise-Inventory");
  const objects = new Map<string, string[]>();
  if (!existsSync(dir)) return objects;
  for (const file of readdirSync(dir).filter((name) => /^[0-9a-f]{64}\.sqlite$/.test(name))) {
    const db = new Database(join(dir, file), { readonly: true });
    try {
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
  const stored = () => [...inventoryObjects(persistTo).values()].filter((tables) => tables.length > 0).length;
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

test("the cron prunes the activity log past EDGEWISE_ACTIVITY_RETENTION, as a node does; newer entries stay", async () => {
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
    // wrangler dev runs the scheduled handler on this request (--test-scheduled), as Cloudflare does each minute.
    const cron = await fetch(`${worker.worker.match}/__scheduled?cron=*+*+*+*+*`);
    expect(cron.status).toBe(200);
    const left = await sql<Array<{ id: string }>>`
      SELECT id FROM activity_log WHERE id LIKE ${`${prefix}-%`} ORDER BY id`;
    // Before, a Worker ignored the setting: all five stayed.
    expect(left.map((row) => row.id)).toEqual([`${prefix}-new-1`, `${prefix}-new-2`]);
  } finally {
    await sql.end();
  }
});
