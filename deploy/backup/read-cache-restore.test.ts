// A restored node on Redis: the read cache's entries and floors from after the backup are cleared at its first start.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CommerceClient, eventually, uniqueName } from "../../test/commerce/client.ts";
import { freePort, type Started, startProcess } from "../../test/e2e/process.ts";
import { restartablePort } from "../../test/support/ports.ts";
import { npmRun } from "../../test/support/npm-run.ts";
import { cleanup, direct, openDirect, TEST_REDIS_URL, text } from "../../test/redis-bridge/helpers.ts";
import { restoredMarker } from "../read-cache-restored.ts";

const root = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "edgewise-restore-cache-"));
const run = uniqueName("restorecache");
const prefix = `${run}:`;
const started: Started[] = [];
let archive = "";
afterAll(async () => {
  for (const node of started) await node.kill("SIGKILL");
  const redis = await openDirect();
  await cleanup(redis, run);
  redis.close();
  rmSync(work, { recursive: true, force: true });
}, 30_000);

/** `npm start` on `dataDir` with embedded Postgres and this run's Redis keys, as an operator runs it. */
async function nodeProcess(dataDir: string, extra: Record<string, string> = {}) {
  const port = restartablePort();
  const node = await startProcess([process.execPath, join(root, "edge/entries/bun.ts")], {
    cwd: root,
    env: {
      HOST: "127.0.0.1",
      PORT: String(port),
      RATE_LIMIT: "1000000/60s",
      EDGEWISE_SHUTDOWN_DELAY: "0ms",
      EDGEWISE_DATA_DIR: dataDir,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      ...extra,
    },
    pattern: /admin token[^:]*: (\S+)/,
  });
  started.push(node);
  const jwtSecret = readFileSync(join(dataDir, "jwt-secret"), "utf8").trim();
  return { node, api: new CommerceClient({ base: `http://127.0.0.1:${port}`, jwtSecret }) };
}

const read = async (api: CommerceClient, path: string) => {
  const reply = await api.call<{ available?: number; code?: string }>("GET", path);
  return { status: reply.status, cache: reply.headers.get("x-cache"), body: reply.body };
};

/** The status of a read with an API key alone: 404 (a sku never set) once the key is accepted, 401 when it is not. */
const withKey = async (api: CommerceClient, key: string) =>
  (await fetch(`${api.target.base}/v1/inventory/${run}-none`, { headers: { "x-api-key": key } })).status;

test("after a restore, the node neither serves the lost newer state from Redis nor has its fills refused", async () => {
  const source = join(work, "source");
  const sku = `${run}-mug`;
  const customer = `${run}-ada`;
  let { node, api } = await nodeProcess(source);
  await api.putSku(sku, 5, 250);
  await api.putAccount(customer, 10_000);
  const issued = await api.call<{ id: string; key: string }>("POST", "/v1/api-keys", {
    body: { sub: `${run}-ci`, scopes: ["inventory:read"] },
  });
  expect(issued.status).toBe(201);
  await node.kill("SIGTERM");
  archive = join(work, "before.tar.gz");
  expect((await npmRun({}, "backup", "--", "--data-dir", source, "--out", archive)).code).toBe(0);

  // After the backup point: the stock changes and an order is placed, and both are read into the cache.
  ({ node, api } = await nodeProcess(source));
  expect(await withKey(api, issued.body.key)).toBe(404);
  expect((await api.call("DELETE", `/v1/api-keys/${issued.body.id}`)).status).toBe(204);
  await eventually(async () => (await withKey(api, issued.body.key)) === 401, "the key revoked");
  await api.putSku(sku, 9, 250);
  const placed = await api.place(customer, [{ sku, quantity: 1 }], { "idempotency-key": `${run}-k1` });
  expect(placed.status).toBe(202);
  const { orderId } = placed.body;
  await api.settle(orderId);
  await eventually(async () => {
    const got = await read(api, `/v1/inventory/${sku}`);
    return got.cache === "hit" && got.body.available === 8;
  }, "the newer stock cached");
  await eventually(
    async () => (await read(api, `/v1/orders/${orderId}`)).cache === "hit",
    "the order cached",
  );
  await node.kill("SIGTERM");

  // Another deployment's keys on the same Redis (a prefix that starts with this one's, too) are left alone.
  const redis = await openDirect();
  const others = [`${run}-other:read:{inventory:${sku}}`, `${prefix}read:read:{inventory:${sku}}`];
  for (const key of others) await direct(redis, "SET", key, "1:{}", "PX", "600000");

  const target = join(work, "restored");
  const restored = await npmRun({}, "restore", "--", archive, "--data-dir", target);
  expect(restored.code).toBe(0);
  expect(restored.stdout).toContain("read cache");
  // What Redis does not hold comes back as of the backup too: the operator is told to undo it again.
  expect(restored.stdout).toContain("API keys revoked since then are valid again");
  expect(existsSync(join(target, restoredMarker))).toBe(true);
  ({ node, api } = await nodeProcess(target));

  // The restored node's own state: the stock of the backup, and no order (not the cached ones of after it).
  const stock = await read(api, `/v1/inventory/${sku}`);
  expect([stock.status, stock.cache, stock.body.available]).toEqual([200, "miss", 5]);
  const order = await read(api, `/v1/orders/${orderId}`);
  expect([order.status, order.body.code]).toEqual([404, "not_found"]);
  // The revoked key works again: the restore took its revocation back (restore said so above).
  expect(await withKey(api, issued.body.key)).toBe(404);
  // Its reads are cached again at once: no floor from after the backup refuses its fills.
  await eventually(async () => (await read(api, `/v1/inventory/${sku}`)).cache === "hit", "the stock cached");
  for (const key of others) expect(text(await direct(redis, "GET", key))).toBe("1:{}");
  expect(node.output()).toContain(`cleared the read cache's keys in Redis (${prefix}read:{*)`);
  expect(existsSync(join(target, restoredMarker))).toBe(false);

  redis.close();

  // Only the first start after the restore clears: a restart leaves what the node cached.
  await node.kill("SIGTERM");
  ({ node, api } = await nodeProcess(target));
  expect(node.output()).not.toContain("cleared the read cache");
  expect((await read(api, `/v1/inventory/${sku}`)).cache).toBe("hit");
  await node.kill("SIGTERM");
}, 120_000);

test("a restored node on a queue outside its data dir (QSTASH_URL) says, at its first start, what the queue needs", async () => {
  expect(archive).not.toBe(""); // the archive of the test above
  const target = join(work, "restored-external-queue");
  expect((await npmRun({}, "restore", "--", archive, "--data-dir", target)).code).toBe(0);
  // A broker that is not there: the node starts all the same (its deliveries wait), and the warning is about restores.
  const queue = {
    QSTASH_URL: `http://127.0.0.1:${freePort()}`,
    QSTASH_TOKEN: "token",
    QSTASH_CURRENT_SIGNING_KEY: `sig_${crypto.randomUUID().replaceAll("-", "")}`,
    QSTASH_NEXT_SIGNING_KEY: `sig_${crypto.randomUUID().replaceAll("-", "")}`,
  };
  let { node } = await nodeProcess(target, queue);
  expect(node.output()).toContain("restored data dir on a queue outside it (QSTASH_URL)");
  await node.kill("SIGTERM");
  ({ node } = await nodeProcess(target, queue));
  expect(node.output()).not.toContain("restored data dir on a queue outside it");
  await node.kill("SIGTERM");
}, 60_000);
