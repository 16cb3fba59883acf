// A failed delivery's log line leads an operator to its trace and to the broker's record: trace, span and message ids.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk } from "../commerce/client.ts";
import { sampleWrites, writeSampling } from "../../shared/telemetry/trace/sampling.ts";
import { placeTracedOrder } from "./saga-trace.ts";

const lines: Array<Record<string, unknown>> = [];
let running: CommerceNode;
// A receiver that is down: the order's webhook fails, is retried once, then dead-lettered.
const receiver = startReceiver(() => new Response("down", { status: 503 }));
const policy = writeSampling();
beforeAll(async () => {
  // The order's trace is recorded whatever else this process has spent of the write budget.
  sampleWrites({ ratio: 1 });
  running = await startCommerceNode(
    "delivery_logs",
    { EDGEWISE_DELIVERY_RETRIES: "1" },
    { log: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
}, 30_000);
afterAll(async () => {
  sampleWrites(policy);
  receiver.stop();
  await running?.stop();
});

test("each failed attempt's log line names the trace, the failing delivery's span and the broker's message id", async () => {
  const api = running.client;
  const subscription = expectOk(
    await api.call<{ id: string }>("POST", "/v1/webhooks/subscriptions", {
      body: { url: receiver.url("/down"), events: ["order.confirmed"] },
    }),
  );
  const { traceId } = await placeTracedOrder(api);
  const actor = `webhooks/${subscription.id}`;
  const failures = () => lines.filter((line) => line.msg === "delivery failed" && line.actor === actor);
  await eventually(() => failures().length === 2, "the webhook's two failed attempts logged");

  // The trace: every line carries the order's trace id, and the span id of a failed delivery span in it.
  const tracing = running.node.tracing;
  if (!tracing) throw new Error("tracing is off");
  await tracing.flush();
  const spans = tracing.store.trace(traceId);
  for (const line of failures()) {
    expect(line.level).toBe("warn");
    expect(line.trace_id).toBe(traceId);
    const span = spans.find((candidate) => candidate.spanId === line.span_id);
    expect(span?.name).toBe("process WebhookDelivery");
    expect(span?.status).toBe("ERROR");
  }

  // The broker: the lines name the message its events API and dead-letter queue know it by.
  const brokerIds = new Set(failures().map((line) => line.broker_message_id));
  expect(brokerIds.size).toBe(1);
  const [brokerId] = [...brokerIds] as string[];
  expect(brokerId).toMatch(/^msg_/);
  const broker = running.node.broker;
  if (!broker) throw new Error("no embedded broker");
  const auth = { authorization: `Bearer ${broker.token}` };
  await eventually(async () => {
    const events = (await (
      await fetch(`${broker.url}/v2/events?messageId=${brokerId}`, { headers: auth })
    ).json()) as { events: Array<{ state: string }> };
    return events.events.some((event) => event.state === "FAILED");
  }, "the broker's FAILED event for that message");
  const dlq = (await (await fetch(`${broker.url}/v2/dlq`, { headers: auth })).json()) as {
    messages: Array<{ messageId: string }>;
  };
  expect(dlq.messages.some((message) => message.messageId === brokerId)).toBe(true);
}, 40_000);
