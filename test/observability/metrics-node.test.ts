// /metrics on a whole node (startNode, the embedded broker, real Postgres): values move as orders flow.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { startReceiver, TEST_DATABASE_URL } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, type OrderView, uniqueName } from "../commerce/client.ts";
import { type Scrape, scrape } from "./metrics-scrape.ts";

let running: CommerceNode;
// A webhook receiver that is down: each confirmed order's webhook fails, is retried once, then dead-lettered.
const receiver = startReceiver(() => new Response("down", { status: 503 }));
beforeAll(async () => {
  running = await startCommerceNode("metrics_node", { EDGEWISE_DELIVERY_RETRIES: "1" });
}, 30_000);
afterAll(async () => {
  receiver.stop();
  await running?.stop();
});

const http = "http_server_request_duration_seconds";
const orders = 4;

test("orders, reads, deliveries, retries, dead letters and cache hits all show in /metrics", async () => {
  const api = running.client;
  const customer = uniqueName("metrics-cust");
  const skus = [uniqueName("metrics-sku"), uniqueName("metrics-sku")];
  for (const sku of skus) await api.putSku(sku, 100, 250);
  await api.putAccount(customer, 1_000_000);
  expectOk(
    await api.call("POST", "/v1/webhooks/subscriptions", {
      body: { url: receiver.url("/down"), events: ["order.confirmed"] },
    }),
  );

  const before = await scrape(running.node.url);
  for (const name of [http, "edgewise_actor_turn_duration_seconds", "messaging_process_duration_seconds"]) {
    expect(before.type(name)).toBe("histogram");
  }

  // Traffic: place orders, poll each until it settles, then read each settled order three more times.
  let gets = 0;
  let hits = 0;
  const get = async (orderId: string) => {
    const reply = await api.call<OrderView>("GET", `/v1/orders/${orderId}`);
    expect(reply.status).toBe(200);
    gets++;
    if (reply.headers.get("x-cache") === "hit") hits++;
    return reply.body;
  };
  const placed: string[] = [];
  for (let i = 0; i < orders; i++) {
    const reply = await api.place(customer, [{ sku: skus[i % 2] as string, quantity: 1 }]);
    expect(reply.status).toBe(202);
    placed.push(reply.body.orderId);
  }
  for (const orderId of placed) {
    await eventually(async () => (await get(orderId)).status === "confirmed", `order ${orderId} confirmed`);
  }
  for (const orderId of placed) for (let i = 0; i < 3; i++) await get(orderId);
  expect(hits).toBeGreaterThanOrEqual(orders * 2);

  // Each confirmed order's webhook: the first attempt and one retry fail, then the message is dead-lettered.
  let after: Scrape = before;
  await eventually(async () => {
    after = await scrape(running.node.url);
    return after.value("edgewise_dead_letters") >= before.value("edgewise_dead_letters") + orders;
  }, "the webhooks' dead letters");

  const delta = (name: string, labels: Record<string, string> = {}) =>
    after.type(name) === "histogram"
      ? after.count(name, labels) - before.count(name, labels)
      : after.value(name, labels) - before.value(name, labels);

  // HTTP RED, by route pattern: exactly the requests sent.
  expect(delta(http, { http_route: "/v1/orders", http_request_method: "POST" })).toBe(orders);
  expect(
    delta(http, { http_route: "/v1/orders", http_request_method: "POST", http_response_status_code: "202" }),
  ).toBe(orders);
  expect(delta(http, { http_route: "/v1/orders/:orderId", http_request_method: "GET" })).toBe(gets);
  expect(after.text).not.toContain(`/v1/orders/${placed[0]}`);

  // Rate limits: every write and read between the scrapes was decided, and allowed.
  expect(delta("edgewise_rate_limit_decisions_total", { route_class: "write", decision: "allowed" })).toBe(
    orders,
  );
  expect(delta("edgewise_rate_limit_decisions_total", { route_class: "read", decision: "allowed" })).toBe(
    gets,
  );
  expect(delta("edgewise_rate_limit_decisions_total", { decision: "limited" })).toBe(0);

  // Actor turns: each order placed (a write), reserved per sku, and its saga's replies.
  const turns = "edgewise_actor_turn_duration_seconds";
  expect(delta(turns, { actor_type: "order", outcome: "write" })).toBeGreaterThanOrEqual(orders * 3);
  expect(delta(turns, { actor_type: "inventory", outcome: "write" })).toBeGreaterThanOrEqual(orders);
  expect(delta(turns, { actor_type: "order", outcome: "read" })).toBeGreaterThan(0);
  expect(after.value("edgewise_actors_active", { actor_type: "order" })).toBeGreaterThanOrEqual(orders);
  expect(after.type("edgewise_actor_mailbox_depth")).toBe("gauge");
  expect(after.type("edgewise_outbox_lag_seconds")).toBe("gauge");
  expect(after.value("edgewise_outbox_lag_seconds")).toBeGreaterThanOrEqual(0);

  // Messaging: deliveries to inventory (OrderPlaced, once per order with one sku) and billing were processed.
  const processed = (target: string) =>
    delta("edgewise_deliveries_total", { target_type: target, outcome: "processed", status_class: "2xx" });
  expect(processed("inventory")).toBeGreaterThanOrEqual(orders);
  expect(processed("billing")).toBeGreaterThanOrEqual(orders);
  expect(processed("order")).toBeGreaterThanOrEqual(orders * 2);
  expect(
    delta("messaging_process_duration_seconds", { messaging_destination_name: "inventory" }),
  ).toBeGreaterThan(0);
  // The webhooks: two failed attempts each, one of them a retry, and one dead letter each.
  expect(
    delta("edgewise_deliveries_total", { target_type: "webhooks", outcome: "failed", status_class: "5xx" }),
  ).toBe(orders * 2);
  expect(delta("edgewise_delivery_retries_total", { target_type: "webhooks" })).toBe(orders);
  expect(delta("edgewise_dead_letters")).toBe(orders);
  expect(delta("edgewise_broker_deliveries_total")).toBeGreaterThanOrEqual(processed("inventory"));

  // The read cache: the hits counted are the X-Cache: hit answers seen.
  expect(delta("edgewise_read_cache_hits_total", { cache: "reads" })).toBe(hits);
  expect(delta("edgewise_read_cache_misses_total", { cache: "reads" })).toBe(gets - hits);
  expect(after.value("edgewise_read_cache_hit_ratio", { cache: "reads" })).toBeGreaterThan(0);

  // Breakers: Postgres and the broker were used, and are closed.
  expect(after.value("edgewise_breaker_state", { dependency: "postgres", state: "closed" })).toBe(1);
  expect(delta("edgewise_breaker_calls_total", { dependency: "broker", outcome: "success" })).toBeGreaterThan(
    0,
  );
}, 60_000);

test("billing's payments counter: one capture, one insufficient-funds failure and one refund, exactly", async () => {
  const api = running.client;
  const sku = uniqueName("metrics-bill-sku");
  const rich = uniqueName("metrics-rich");
  const poor = uniqueName("metrics-poor");
  await api.putSku(sku, 100, 250);
  await api.putAccount(rich, 10_000);
  await api.putAccount(poor, 100);
  const payments = "edgewise_billing_payments_total";
  const before = await scrape(running.node.url);
  // Every outcome has its series from the start, at 0 until it happens (no failure or refund has happened on this
  // node yet): without it, an alert on the rate of `failed` has no data until the first failure.
  const series = before.metrics[payments]?.data as Array<{ labels: Record<string, string> }> | undefined;
  expect((series ?? []).map((point) => point.labels.outcome).sort()).toEqual([
    "captured",
    "duplicate",
    "failed",
    "refunded",
  ]);
  expect(before.value(payments, { outcome: "failed" })).toBe(0);

  const kept = expectOk(await api.place(rich, [{ sku, quantity: 1 }])).orderId;
  const failed = expectOk(await api.place(poor, [{ sku, quantity: 1 }])).orderId;
  const cancelled = expectOk(await api.place(rich, [{ sku, quantity: 2 }])).orderId;
  expect((await api.settle(kept)).status).toBe("confirmed");
  expect((await api.settle(failed)).status).toBe("rejected");
  expect((await api.settle(cancelled)).status).toBe("confirmed");
  expect((await api.cancel(cancelled)).status).toBe(202);
  // /metrics renders at most once a second: poll until a render shows the refund, the last of the four.
  let after: Scrape = before;
  await eventually(async () => {
    after = await scrape(running.node.url);
    return after.value(payments, { outcome: "refunded" }) > before.value(payments, { outcome: "refunded" });
  }, "the cancelled order's refund in /metrics");
  expect(after.type(payments)).toBe("counter");
  const delta = (outcome: string) => after.value(payments, { outcome }) - before.value(payments, { outcome });
  expect(delta("captured")).toBe(2);
  expect(delta("failed")).toBe(1);
  expect(delta("refunded")).toBe(1);
  // The rejected order's refund request finds nothing paid: no outcome (and a redelivery would be `duplicate`).
  expect(after.value(payments) - before.value(payments)).toBe(4 + delta("duplicate"));
}, 60_000);

test("a reply stuck in billing's own outbox shows in its pending and lag gauges", async () => {
  // What a billing relay that cannot publish leaves (the broker refusing its batch): a committed reply, backing off,
  // which no actor outbox holds. Made directly in the table, so the test needs no broker outage. Its retry is due
  // within the relay's horizon: one further ahead is taken for a wall clock stepped back, and is due at once.
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  const table = sql(`${running.schema}.billing_outbox`);
  try {
    const [row] = await sql<Array<{ seq: string }>>`
      INSERT INTO ${table} (envelope, created_at, available_at, attempts, last_error)
      VALUES (${sql.json({ id: uniqueName("stuck"), type: "PaymentCaptured" })}, now() - interval '90 seconds',
        now() + interval '8 seconds', 7, 'broker refused the batch')
      RETURNING seq`;
    let seen: Scrape | undefined;
    await eventually(async () => {
      seen = await scrape(running.node.url);
      return seen.value("edgewise_billing_outbox_pending") >= 1;
    }, "the stuck billing reply in /metrics");
    expect(seen?.type("edgewise_billing_outbox_pending")).toBe("gauge");
    expect(seen?.value("edgewise_billing_outbox_lag_seconds")).toBeGreaterThanOrEqual(90);
    await sql`DELETE FROM ${table} WHERE seq = ${row?.seq as string}`;
    await eventually(
      async () => (await scrape(running.node.url)).value("edgewise_billing_outbox_lag_seconds") < 90,
      "the gauges once the reply left",
    );
  } finally {
    await sql.end();
  }
}, 30_000);
