// npm run backup -- --online from a Deno node (`npm run start:deno`): restored by `npm run restore`, it starts on Deno.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CommerceClient, type OrderView } from "../../test/commerce/client.ts";
import { makeWorld, setUpWorld, type World } from "../../test/chaos/invariants.ts";
import { denoEntryCommand, type Started, startProcess } from "../../test/e2e/process.ts";
import { restartablePort } from "../../test/support/ports.ts";
import { npmRun as run } from "../../test/support/npm-run.ts";

const root = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "edgewise-online-deno-"));
const dir = (name: string) => join(work, name);
// The nodes' $TMPDIR: they stage in their data dirs, so nothing may land here.
const staged = dir("tmp");
mkdirSync(staged);
const started: Started[] = [];
afterAll(async () => {
  for (const node of started) await node.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
}, 30_000);

/** `npm run start:deno` on `dataDir`, embedded defaults; `token` is the admin token it prints. */
async function denoNode(dataDir: string) {
  const port = restartablePort();
  const node = await startProcess(denoEntryCommand(root), {
    cwd: root,
    env: {
      HOST: "127.0.0.1",
      PORT: String(port),
      RATE_LIMIT: "1000000/60s",
      EDGEWISE_SHUTDOWN_DELAY: "0ms",
      EDGEWISE_DATA_DIR: dataDir,
      TMPDIR: staged,
      NO_COLOR: "1",
    },
    pattern: /admin token[^:]*: (\S+)/,
    timeoutMs: 60_000,
  });
  started.push(node);
  const url = `http://127.0.0.1:${port}`;
  const jwtSecret = readFileSync(join(dataDir, "jwt-secret"), "utf8").trim();
  return { node, token: node.match, url, api: new CommerceClient({ base: url, jwtSecret }) };
}

/** Each customer's orders as GET /v1/orders lists them, with the orders, stock and balances behind them. */
async function snapshot(api: CommerceClient, world: World, ids: string[]) {
  const orders = await Promise.all(ids.map((id) => api.order(id)));
  const skus = await Promise.all(world.skus.map(({ sku }) => api.sku(sku)));
  const customers = await Promise.all(
    world.customers.map(async ({ id }) => {
      const listed = await api.call<{ items: OrderView[] }>("GET", `/v1/orders?customerId=${id}&limit=100`);
      expect(listed.status).toBe(200);
      return {
        id,
        balance: await api.balance(id),
        listed: listed.body.items.map((o) => `${o.orderId}:${o.status}:${o.totalCents}`).sort(),
      };
    }),
  );
  return { orders, skus, customers };
}

/** Every order terminal and listed, no reservation left, and two equal snapshots in a row. */
async function settled(api: CommerceClient, world: World, ids: string[], timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const now = await snapshot(api, world, ids);
    const done =
      now.orders.every((o) => o.status !== "pending") &&
      now.skus.every((s) => s.reserved === 0) &&
      now.customers.reduce((n, c) => n + c.listed.length, 0) === ids.length;
    const text = JSON.stringify(now);
    if (done && text === last) return now;
    if (Date.now() > deadline) throw new Error(`not settled after ${timeoutMs} ms: ${text.slice(0, 2000)}`);
    last = done ? text : "";
    await Bun.sleep(300);
  }
}

test("a Deno node backed up while it runs: the archive restores, and a Deno node on it lists the same orders and works on", async () => {
  const { world, plans } = makeWorld("online-deno", 8, 29);
  const source = dir("deno-live");
  const live = await denoNode(source);
  await setUpWorld(live.api, world);
  const ids: string[] = [];
  for (const plan of plans) {
    const placed = await live.api.place(plan.customerId, plan.items, { "idempotency-key": plan.key });
    expect(placed.status).toBe(202);
    ids.push(placed.body.orderId);
  }
  const before = await settled(live.api, world, ids);
  expect(before.orders.filter((o) => o.status === "confirmed").length).toBeGreaterThan(0);

  const archive = dir("deno-online.tar.gz");
  const made = await run(
    { EDGEWISE_TOKEN: live.token },
    "backup",
    "--",
    "--online",
    "--url",
    live.url,
    "--out",
    archive,
    "--timeout",
    "60s",
  );
  expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: "" });
  expect(made.stdout).toContain("checked, mode 0600");
  for (let i = 0; i < 50 && existsSync(join(source, ".online-backup")); i++) await Bun.sleep(20);
  expect(existsSync(join(source, ".online-backup"))).toBe(false);
  expect(readdirSync(staged)).toEqual([]);
  // The Deno node went on serving.
  expect((await fetch(`${live.url}/readyz`)).status).toBe(200);

  const target = dir("deno-restored");
  const restored = await run({}, "restore", "--", archive, "--data-dir", target);
  expect({ code: restored.code, stderr: restored.stderr }).toEqual({ code: 0, stderr: "" });

  const again = await denoNode(target);
  expect(again.api.target.jwtSecret).toBe(live.api.target.jwtSecret);
  expect(await settled(again.api, world, ids)).toEqual(before);
  const fresh = await again.api.place(world.customers[0]?.id as string, [
    { sku: world.skus[0]?.sku as string, quantity: 1 },
  ]);
  expect(fresh.status).toBe(202);
  expect((await again.api.settle(fresh.body.orderId)).status).not.toBe("pending");
  await again.node.kill("SIGTERM");
  await live.node.kill("SIGTERM");
}, 180_000);
