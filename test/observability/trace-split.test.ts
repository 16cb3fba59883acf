// A split deployment keeps one trace: the gateway's call to the actor host carries its span's W3C trace context.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { StoredSpan } from "../../shared/telemetry/trace/store.ts";
import { type CommerceNode, startCommerceGateway, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, uniqueName } from "../commerce/client.ts";
import { hex } from "./saga-trace.ts";

const actorHostSecret = crypto.randomUUID() + crypto.randomUUID();
let actorHost: CommerceNode;
let gateway: CommerceNode;
beforeAll(async () => {
  actorHost = await startCommerceNode("trace_split_host", { ACTOR_HOST_SECRET: actorHostSecret });
  gateway = await startCommerceGateway(actorHost, actorHostSecret);
}, 60_000);
afterAll(async () => {
  await gateway?.stop();
  await actorHost?.stop();
});

test("the actor host's spans continue the gateway's trace", async () => {
  // Both nodes share this process's tracer provider, and each attaches its own store, so either store sees both.
  const tracing = actorHost.node.tracing;
  expect(tracing).toBeDefined();
  if (!tracing) return;
  const traceId = hex(16);
  const callerSpanId = hex(8);
  const placed = await gateway.client.place(
    uniqueName("split-cust"),
    [{ sku: uniqueName("split-sku"), quantity: 1 }],
    {
      traceparent: `00-${traceId}-${callerSpanId}-01`,
    },
  );
  expect(placed.status).toBe(202);

  let spans: StoredSpan[] = [];
  const isServer = (span: StoredSpan, route: string) =>
    span.kind === "SERVER" && span.attributes["http.route"] === route;
  await eventually(async () => {
    await tracing.flush();
    spans = tracing.store.trace(traceId);
    return spans.some((span) => span.name.startsWith("turn order"));
  }, "the order's first turn in the trace");

  const gatewayServer = spans.find((span) => isServer(span, "/v1/orders"));
  expect(gatewayServer?.parentSpanId).toBe(callerSpanId);
  // The actor host's request is the gateway request's child, and the order's turn is the actor host request's.
  const hostServer = spans.find((span) => span.kind === "SERVER" && span !== gatewayServer);
  expect(hostServer?.attributes["http.route"]).toMatch(/^\/_edgewise\/actors\//);
  expect(hostServer?.parentSpanId).toBe(gatewayServer?.spanId);
  const turn = spans.find((span) => span.name.startsWith("turn order"));
  expect(turn?.parentSpanId).toBe(hostServer?.spanId);
  expect(spans.every((span) => span.traceId === traceId)).toBe(true);
});
