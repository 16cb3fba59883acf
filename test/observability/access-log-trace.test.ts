// Access lines on a node name their request's trace (a request that starts one, a delivery); a made-up method is bounded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { EdgewiseNode } from "../../deploy/bun/node.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import {
  readSampling,
  sampleReads,
  sampleWrites,
  writeSampling,
} from "../../shared/telemetry/trace/sampling.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { type CommerceClient, uniqueName } from "../commerce/client.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";

const capture = captureSink();
const policies = { reads: readSampling(), writes: writeSampling() };
let running: CommerceNode;
let node: EdgewiseNode;
let client: CommerceClient;

beforeAll(async () => {
  running = await startCommerceNode(
    "access_log_trace",
    {},
    // A logger of the test's: the access log is on, and debug keeps the deliveries' (quiet) access lines.
    { logger: createLogger({ level: "debug", sink: capture.sink }) },
  );
  ({ node, client } = running);
  // Every request recorded, so each access line's ids can be looked up among the stored spans.
  sampleReads({ ratio: 1 });
  sampleWrites({ ratio: 1 });
}, 30_000);
afterAll(async () => {
  sampleReads(policies.reads);
  sampleWrites(policies.writes);
  await running?.stop();
});

type Line = Record<string, unknown>;
const accessLines = (): Line[] => capture.records().filter((record) => record.msg === "request");

test("a request without a traceparent: its access line names the trace and SERVER span the gateway started", async () => {
  const tracing = node.tracing;
  if (!tracing) throw new Error("tracing is off");
  const [sku, customer] = [uniqueName("access-sku"), uniqueName("access-cust")];
  await client.putSku(sku, 10, 100);
  await client.putAccount(customer, 10_000);
  const placed = await client.place(customer, [{ sku, quantity: 1 }]);
  expect(placed.status).toBe(202);
  const read = await client.call("GET", `/v1/inventory/${sku}`);
  expect(read.status).toBe(200);

  await tracing.flush();
  for (const [reply, route] of [
    [placed, "/v1/orders"],
    [read, "/v1/inventory/:sku"],
  ] as const) {
    const line = accessLines().find((record) => record.request_id === reply.headers.get("x-request-id"));
    expect(line).toMatchObject({ route, status: reply.status });
    expect(line?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    const server = tracing.store
      .trace(line?.trace_id as string)
      .find((span) => span.kind === "SERVER" && span.spanId === line?.span_id);
    expect(server?.name).toBe(`${reply === placed ? "POST" : "GET"} ${route}`);
  }
}, 60_000);

test("a delivery over HTTP: its access line names the trace its message carries", async () => {
  // The embedded broker hands this node's deliveries over in process, past the access log; QStash's come over HTTP.
  const broker = node.broker;
  if (!broker) throw new Error("no embedded broker");
  const traceId = "5a1c0ffee5a1c0ffee5a1c0ffee5a1c0";
  const sku = uniqueName("access-delivered");
  const envelope = createEnvelope({
    type: "Put",
    source: "edgewise://test/access-log",
    target: `inventory/${sku}`,
    data: { available: 1, priceCents: 100 },
    traceparent: `00-${traceId}-5a1c0ffee5a1c0ff-01`,
  });
  const path = `/_edgewise/deliver/inventory/${sku}`;
  const body = JSON.stringify(envelope);
  const signature = await createSigner(broker.currentSigningKey)(
    `${node.publicUrl}${path}`,
    new TextEncoder().encode(body),
  );
  const delivered = await fetch(`${node.url}${path}`, {
    method: "POST",
    body,
    headers: { "content-type": "application/cloudevents+json", "upstash-signature": signature },
  });
  expect(delivered.status).toBe(200);
  await delivered.arrayBuffer();
  const line = accessLines().find((record) => record.request_id === delivered.headers.get("x-request-id"));
  expect(line).toMatchObject({ route: "/_edgewise/deliver/:type/:key", status: 200, trace_id: traceId });
  expect(line?.span_id).toMatch(/^[0-9a-f]{16}$/);
}, 60_000);

test("a made-up method names no span and fills no line: `_OTHER`, `HTTP <route>`, and 32 of its characters kept", async () => {
  // Deno's server hands the app any token as a method, thousands of characters long (the Fetch standard keeps it);
  // Bun's refuses them, and its Request turns one into GET, so the request is made with the method Deno would give.
  const tracing = node.tracing;
  if (!tracing) throw new Error("tracing is off");
  const method = `Z${"X".repeat(3_000)}`;
  const request = new Request(`${node.url}/v1/orders/o-1`, {
    headers: { authorization: `Bearer ${await client.token()}` },
  });
  Object.defineProperty(request, "method", { value: method });
  const answered = await node.app.fetch(request, { remoteAddress: "127.0.0.1" });
  expect(answered.status).toBe(405);
  const line = accessLines().find((record) => record.request_id === answered.headers.get("x-request-id"));
  expect(String(line?.method)).toBe(`Z${"X".repeat(31)}…`);
  // The refusal's detail, in the answer and its debug line, names the method the same way.
  const refused = capture
    .records()
    .find((record) => record.request_id === line?.request_id && record.msg === "request refused");
  expect(String(refused?.detail)).toStartWith(`Z${"X".repeat(31)}… is not allowed on /v1/orders/o-1`);
  expect(((await answered.json()) as { detail: string }).detail).toBe(refused?.detail as string);
  await tracing.flush();
  const server = tracing.store
    .trace(line?.trace_id as string)
    .find((span) => span.kind === "SERVER" && span.spanId === line?.span_id);
  // Before, the span was named by the 3,001 characters, and its http.request.method held them all.
  expect(server?.name).toBe("HTTP /*");
  expect(server?.attributes).toMatchObject({
    "http.request.method": "_OTHER",
    "http.request.method_original": `Z${"X".repeat(31)}…`,
  });
}, 60_000);
