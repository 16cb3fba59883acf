// The order lifecycle on Durable Objects: the production Worker (root wrangler.toml) under `wrangler dev`, with the
// local broker and the real Postgres, each on a schema of its own. Only 127.0.0.1.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { uniqueName } from "./client.ts";
import { consoleWorkerdSuite } from "./console-workerd.ts";
import { lifecycleEnv, lifecycleSuite } from "./lifecycle.ts";
import { type CommerceWorker, startCommerceWorker } from "./workerd-node.ts";

let running: CommerceWorker | undefined;

beforeAll(async () => {
  running = await startCommerceWorker("commerce_cf", lifecycleEnv);
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
