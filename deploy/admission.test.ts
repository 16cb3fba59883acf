// Admission control on a node: while the embedded broker is behind, new orders are refused (503 overloaded,
// Retry-After) before anything is written; every accepted order settles once, and a refused one can be sent again.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type postgres from "postgres";
import { parseConfig } from "../shared/config/index.ts";
import { checkInvariants, makeWorld, setUpWorld } from "../test/chaos/invariants.ts";
import { CommerceClient, type OrderView } from "../test/commerce/client.ts";
import { type EdgewiseNode, startNode } from "./bun/node.ts";
import { referenceSystem } from "./reference.ts";

const work = mkdtempSync(join(tmpdir(), "edgewise-admission-"));
const running: EdgewiseNode[] = [];
afterAll(async () => {
  for (const node of running) await node.stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}, 30_000);

/** Each node's log lines, parsed, in the order written. */
type LogLine = { level: string; msg: string } & Record<string, unknown>;

async function nodeOn(dataDir: string, env: Record<string, string>) {
  const lines: LogLine[] = [];
  const node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      EDGEWISE_DATA_DIR: dataDir,
      RATE_LIMIT: "1000000/60s",
      EDGEWISE_SHUTDOWN_DELAY: "0ms",
      ...env,
    }),
    ...referenceSystem(),
    log: (line) => lines.push(JSON.parse(line) as LogLine),
  });
  running.push(node);
  const jwtSecret = readFileSync(join(dataDir, "jwt-secret"), "utf8").trim();
  return { node, lines, api: new CommerceClient({ base: node.url, jwtSecret }) };
}

/** The id `POST /v1/orders` gives (caller, Idempotency-Key): to ask whether a refused placement left an order. */
async function orderIdFor(sub: string, key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${sub}\n${key}`));
  const base64 = btoa(String.fromCharCode(...new Uint8Array(digest).subarray(0, 18)));
  return `idem-${base64.replaceAll("+", "-").replaceAll("/", "_")}`;
}

const metric = (text: string, name: string) =>
  Number(
    text
      .split("\n")
      .find((line) => line.startsWith(`${name} `))
      ?.split(" ")[1] ?? Number.NaN,
  );

test("behind its queue, a node refuses new orders with 503 overloaded before writing; all accepted settle once", async () => {
  const dataDir = join(work, "node");
  const { world, plans } = makeWorld("admission", 30, 17);
  const { node, api, lines } = await nodeOn(dataDir, { EDGEWISE_MAX_QUEUE_DELAY: "300ms" });
  await setUpWorld(api, world);

  // The broker stops handing out messages (publishing goes on): what an overloaded broker looks like, held still.
  await node.broker?.pauseDeliveries();
  const accepted: string[] = [];
  const refused: typeof plans = [];
  for (const plan of plans) {
    const reply = await api.place(plan.customerId, plan.items, { "idempotency-key": plan.key });
    if (reply.status === 202) accepted.push(reply.body.orderId);
    else {
      expect(reply.status).toBe(503);
      expect(reply.headers.get("content-type")).toStartWith("application/problem+json");
      expect(Number(reply.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(reply.body).toMatchObject({ status: 503, code: "overloaded" });
      refused.push(plan);
    }
    await Bun.sleep(60);
  }
  // The first orders were taken while the queue was fresh; those after its oldest message waited 300 ms were not.
  expect(accepted.length).toBeGreaterThan(0);
  expect(refused.length).toBeGreaterThan(0);
  // Nothing was written for a refused placement: its order does not exist.
  for (const plan of refused) {
    const id = await orderIdFor("admin", plan.key);
    expect((await api.call("GET", `/v1/orders/${id}`)).status).toBe(404);
  }
  // The rest of the API and the probes answer as usual; /metrics says why and how often.
  expect((await api.call("GET", `/v1/orders/${accepted[0]}`)).status).toBe(200);
  expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
  expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
  const metrics = await (await fetch(`${node.url}/metrics`)).text();
  expect(metric(metrics, "edgewise_admission_refused_total")).toBe(refused.length);
  expect(metric(metrics, "edgewise_queue_behind_seconds")).toBeGreaterThan(0.3);
  expect(metric(metrics, "edgewise_event_loop_lag_seconds")).toBeGreaterThanOrEqual(0);
  // The log says so once for the episode (each refusal is logged at debug only): at warn, how far behind and the limit.
  const shedding = lines.filter((line) => line.msg.startsWith("admission: refusing new orders"));
  expect(shedding).toHaveLength(1);
  expect(shedding[0]).toMatchObject({ level: "warn", limit_ms: 300 });
  expect(shedding[0]?.behind_ms as number).toBeGreaterThan(300);
  await node.stop();

  // Restarted, the node delivers its backlog; a client sending the refused placements again (same keys, after
  // Retry-After) gets them accepted once it has caught up.
  const { node: again, api: restarted } = await nodeOn(dataDir, { EDGEWISE_MAX_QUEUE_DELAY: "300ms" });
  const retried: string[] = [];
  for (const plan of refused) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const reply = await restarted.place(plan.customerId, plan.items, { "idempotency-key": plan.key });
      if (reply.status === 202) {
        retried.push(reply.body.orderId);
        expect(reply.body.orderId).toBe(await orderIdFor("admin", plan.key));
        break;
      }
      expect(reply.status).toBe(503);
      expect(Date.now()).toBeLessThan(deadline);
      await Bun.sleep(200);
    }
  }
  const all = [...accepted, ...retried];
  expect(new Set(all).size).toBe(plans.length);
  const final: OrderView[] = [];
  for (const id of all) final.push(await restarted.settle(id, undefined, 30_000));
  // Quiet: no reservation left, every order in the read model, before the invariants are read.
  const deadline = Date.now() + 30_000;
  while (
    (await Promise.all(world.skus.map(({ sku }) => restarted.sku(sku)))).some((s) => s.reserved > 0) &&
    Date.now() < deadline
  )
    await Bun.sleep(200);
  const report = await checkInvariants(restarted, world, final, again.sql as unknown as postgres.Sql);
  expect(report.violations).toEqual([]);
  await again.stop();
}, 90_000);

test("behind its queue, a retry of an order already accepted (same Idempotency-Key) gets its answer, not 503", async () => {
  const { node, api } = await nodeOn(join(work, "retries"), { EDGEWISE_MAX_QUEUE_DELAY: "300ms" });
  await api.putSku("retry-sku", 100, 250);
  await api.putAccount("retry-customer", 100_000);
  await api.putAccount("retry-other", 100_000);
  const items = [{ sku: "retry-sku", quantity: 1 }];

  // Accepted while the queue is fresh; then the broker stops handing out messages and falls behind.
  await node.broker?.pauseDeliveries();
  const first = await api.place("retry-customer", items, { "idempotency-key": "retry-1" });
  expect(first.status).toBe(202);
  const deadline = Date.now() + 10_000;
  while (metric(await (await fetch(`${node.url}/metrics`)).text(), "edgewise_queue_behind_seconds") <= 0.3) {
    expect(Date.now()).toBeLessThan(deadline);
    await Bun.sleep(50);
  }

  // A new placement is refused and leaves nothing...
  const fresh = await api.place("retry-customer", items, { "idempotency-key": "retry-2" });
  expect(fresh.status).toBe(503);
  expect((await api.call("GET", `/v1/orders/${await orderIdFor("admin", "retry-2")}`)).status).toBe(404);
  // ...but the same placement sent again writes nothing new: it gets the same order, as Idempotency-Key promises,
  const again = await api.place("retry-customer", items, { "idempotency-key": "retry-1" });
  expect(again.status).toBe(202);
  expect(again.body.orderId).toBe(first.body.orderId);
  expect(again.headers.get("location")).toBe(`/v1/orders/${first.body.orderId}`);
  // and the same key with another body is still 422, as at any other time.
  const other = await api.place("retry-other", items, { "idempotency-key": "retry-1" });
  expect(other.status).toBe(422);
  expect(other.body).toMatchObject({ code: "idempotency.mismatch" });
  // Only the new placement was refused (read past the 1 s for which /metrics serves one render again).
  await Bun.sleep(1_100);
  const metrics = await (await fetch(`${node.url}/metrics`)).text();
  expect(metric(metrics, "edgewise_admission_refused_total")).toBe(1);
  await node.stop();
}, 60_000);

test("behind its queue, refused placements with new Idempotency-Keys load no order actor to find they are new", async () => {
  const { node, api } = await nodeOn(join(work, "resident"), { EDGEWISE_MAX_QUEUE_DELAY: "300ms" });
  await api.putSku("resident-sku", 100, 250);
  await api.putAccount("resident-customer", 100_000);
  const items = [{ sku: "resident-sku", quantity: 1 }];
  await node.broker?.pauseDeliveries();
  expect((await api.place("resident-customer", items, { "idempotency-key": "resident-0" })).status).toBe(202);
  const deadline = Date.now() + 10_000;
  while (metric(await (await fetch(`${node.url}/metrics`)).text(), "edgewise_queue_behind_seconds") <= 0.3) {
    expect(Date.now()).toBeLessThan(deadline);
    await Bun.sleep(50);
  }

  // Each refusal asks whether its key's order exists: the local host tells from its store, activating nothing
  // (before, each new key loaded an order actor and ran a read turn on it, and left it resident).
  const orders = () => node.host?.stats().byType.find((entry) => entry.type === "order")?.active ?? 0;
  const before = orders();
  for (let n = 1; n <= 200; n++) {
    const reply = await api.place("resident-customer", items, { "idempotency-key": `resident-${n}` });
    expect(reply.status).toBe(503);
  }
  expect(orders()).toBe(before);
  // The order already accepted is still answered, not refused.
  expect((await api.place("resident-customer", items, { "idempotency-key": "resident-0" })).status).toBe(202);
  await node.stop();
}, 60_000);
