// Chaos (e): a duplicate-delivery storm. The node's PUBLIC_URL points at a proxy that sends every delivery two or
// three times (a third of the second copies racing the original), so every message reaches its actor or consumer
// more than once. Every charge, reservation and point must still be applied exactly once.
import { afterAll, expect, test } from "bun:test";
import { type Broker, startBroker } from "../../deploy/local/broker/index.ts";
import { type DuplicatingProxy, startDuplicatingProxy } from "./dup-proxy.ts";
import {
  BROKER_TIME_SCALE,
  type InProcessNode,
  startInProcessNode,
  TEST_DATABASE_URL,
  uniqueSchema,
} from "./nodes.ts";
import { runFaultScenario } from "./scenario.ts";

const ORDERS = Number(process.env.CHAOS_DUP_ORDERS ?? 200);
const schema = uniqueSchema("chaos_dup");
let broker: Broker | undefined;
let proxy: DuplicatingProxy | undefined;
let running: InProcessNode | undefined;
afterAll(async () => {
  await proxy?.stop();
  await running?.stop(); // drops the schema
  await broker?.stop();
}, 30_000);

test(`every delivery two or three times, ${ORDERS} orders: each charge, reservation and point applied once`, async () => {
  // A broker of its own (not the node's embedded one, which hands its own node's deliveries over in process and
  // so would bypass the proxy), on the node's schema.
  broker = await startBroker({
    port: 0,
    databaseUrl: TEST_DATABASE_URL,
    schema,
    timeScale: BROKER_TIME_SCALE,
    log: () => {},
  });
  proxy = startDuplicatingProxy({ seed: 5 });
  running = await startInProcessNode(
    "chaos_dup",
    {
      QSTASH_URL: broker.url,
      QSTASH_TOKEN: broker.token,
      QSTASH_CURRENT_SIGNING_KEY: broker.currentSigningKey,
      QSTASH_NEXT_SIGNING_KEY: broker.nextSigningKey,
      PUBLIC_URL: proxy.url,
    },
    { schema },
  );
  const node = running;
  const dup = proxy;
  dup.setTarget(node.node.url);
  const orderRate = 10;
  const { row, report } = await runFaultScenario({
    name: "duplicate-delivery",
    api: node.client,
    sql: node.sql,
    base: () => node.node.url,
    orders: ORDERS,
    orderRate,
    readRate: 10,
    seed: 5,
    // The storm lasts the whole run: no fault to inject; the window is the load itself.
    beforeFault: async () => {},
    inject: () => {},
    during: (driver) =>
      (async () => {
        while (driver.remaining > 0) await Bun.sleep(100);
      })(),
    heal: () => {},
    afterHeal: async () => {},
    drainTimeoutMs: 60_000,
    logs: () => node.logs,
    extra: () => ({ duplicator: dup.stats() }),
  });
  const stats = dup.stats();
  expect(report.stuck).toEqual([]);
  expect(report.invariants.violations).toEqual([]);
  expect(report.backlog.deadLettered).toBe(0);
  expect(report.readModel).toEqual([]);
  expect(row.hung).toBe(0);
  expect(row.ordersAccepted).toBe(ORDERS);
  expect(row.outcomes.confirmed).toBeGreaterThan(0);
  // /readyz answers within its own check timeout (2 s), whatever a dependency does.
  expect(row.readyzHung).toBe(0);
  // The storm really happened: every delivery went out at least twice.
  expect(stats.requests).toBeGreaterThan(ORDERS);
  expect(stats.copies).toBeGreaterThanOrEqual(stats.requests);
}, 300_000);
