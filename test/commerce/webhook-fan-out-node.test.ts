// A fan-out past one delivery's 1,024 subscriptions goes on through the queue: every subscriber of a node gets the event.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "../../deploy/local/broker/db.ts";
import { startReceiver, TEST_DATABASE_URL } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { eventually, expectOk } from "./client.ts";

/** Past 4 pages of 256: the fan-out's first delivery cannot reach them all. */
const subscribers = 1_100;
let running: CommerceNode;
const receiver = startReceiver(() => new Response(null, { status: 204 }));

beforeAll(async () => {
  running = await startCommerceNode("fan_out_continued");
  // Subscriptions straight into the node's table (1,100 API calls would be the slow part), each to its own path.
  const sql = await connect({ url: TEST_DATABASE_URL, max: 1, schema: running.schema });
  try {
    await sql`
      INSERT INTO webhook_subscriptions (id, url, events, secret, created_at)
      SELECT 'whsub_' || lpad(n::text, 16, '0'), ${receiver.url("/hook/")} || n, 'order.confirmed',
        'whsec_' || md5(n::text), now() - interval '1 hour' + n * interval '1 ms'
      FROM generate_series(1, ${subscribers}) AS n`;
  } finally {
    await sql.end();
  }
}, 30_000);
afterAll(async () => {
  receiver.stop();
  await running?.stop();
});

test(`an order confirmed with ${subscribers.toLocaleString("en")} subscriptions: the fan-out goes on in a second delivery, and each receives order.confirmed once`, async () => {
  const api = running.client;
  await api.putSku("fan-mug", 10, 500);
  await api.putAccount("fan-customer", 10_000);
  const placed = expectOk(await api.place("fan-customer", [{ sku: "fan-mug", quantity: 1 }]));
  expect((await api.settle(placed.orderId)).status).toBe("confirmed");

  const paths = () => new Set(receiver.deliveries.map((delivery) => delivery.path));
  await eventually(() => paths().size === subscribers, "every subscriber's POST", 60_000);
  // What integrators rely on: the event, once per subscription, none missing (one webhook-id: the event's).
  await Bun.sleep(500);
  expect(receiver.deliveries).toHaveLength(subscribers);
  expect(new Set(receiver.deliveries.map((delivery) => delivery.headers["webhook-id"])).size).toBe(1);
  // The fan-out went on in a second delivery to webhooks/outbound (a WebhookFanOut), not all in the event's own.
  const broker = running.node.broker;
  if (!broker) throw new Error("no embedded broker");
  const outbound = `${running.node.url}/_edgewise/deliver/webhooks/outbound`;
  const events = (await (
    await fetch(`${broker.url}/v2/events?url=${encodeURIComponent(outbound)}`, {
      headers: { authorization: `Bearer ${broker.token}` },
    })
  ).json()) as { events: Array<{ messageId: string; state: string }> };
  const continued = new Set(events.events.filter((e) => e.state === "DELIVERED").map((e) => e.messageId));
  expect(continued.size).toBe(1);
  for (const delivery of receiver.deliveries) {
    expect(JSON.parse(delivery.body)).toMatchObject({
      type: "order.confirmed",
      data: { orderId: placed.orderId },
    });
  }
}, 90_000);
