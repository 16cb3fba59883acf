// One order, one trace on workerd: the production Worker under `wrangler dev` exports OTLP/JSON to a receiver here;
// gateway → order turn (Durable Object) → relay → broker → signed delivery → the next turns, parents and links right.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { eventually, uniqueName } from "../commerce/client.ts";
import { type CommerceWorker, startCommerceWorker } from "../commerce/workerd-node.ts";
import { wranglerRecords } from "../support/wrangler.ts";
import { expectGatewayAndTurns, hex, kindName, placeTracedOrder } from "./saga-trace.ts";

const root = join(import.meta.dir, "../..");
/**
 * Skipped only when wrangler or workerd cannot run here at all (not installed, or no workerd build for this
 * platform); a Worker that fails to build or start is a failure.
 */
function unavailable(): string | undefined {
  const wrangler = join(root, "node_modules/.bin/wrangler");
  if (!existsSync(wrangler)) return `${wrangler} is not installed`;
  const workerd = join(root, "node_modules/.bin/workerd");
  try {
    const run = Bun.spawnSync([workerd, "--version"], { stdout: "ignore", stderr: "pipe" });
    if (run.exitCode !== 0)
      return `workerd --version exited ${run.exitCode}: ${run.stderr.toString().trim()}`;
  } catch (error) {
    return `workerd cannot run: ${error}`;
  }
  return undefined;
}
const skip = unavailable();
if (skip) console.warn(`[trace-workerd] skipped: ${skip}`);

/** One span as the receiver decoded it from OTLP/JSON. */
interface Received {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP's numbering: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  /** From startTimeUnixNano (a decimal string). */
  startMs: number;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
  service: unknown;
  /** The resource's `deployment.environment`, from OTEL_RESOURCE_ATTRIBUTES. */
  environment: unknown;
}
const [PRODUCER, CONSUMER] = [4, 5];

type OtlpValue = Record<string, unknown>;
function value(v: OtlpValue | undefined): unknown {
  if (!v) return undefined;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("arrayValue" in v) return ((v.arrayValue as { values?: OtlpValue[] }).values ?? []).map(value);
  return v.stringValue ?? v.boolValue;
}
const attributes = (list: Array<{ key: string; value: OtlpValue }> | undefined) =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]));

/** A tiny OTLP/HTTP receiver: POST /v1/traces with a JSON body; keeps the spans, raw bodies and request headers. */
function startReceiver() {
  const spans: Received[] = [];
  const bodies: string[] = [];
  const headers: Headers[] = [];
  /** Metrics pushes (POST /v1/metrics): each one's resource attributes and metric names. */
  const metricPushes: Array<{ resource: Record<string, unknown>; names: string[]; headers: Headers }> = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (request.method === "POST" && path === "/v1/metrics") {
        const pushed = (await request.json()) as {
          resourceMetrics: Array<{
            resource?: { attributes?: Array<{ key: string; value: OtlpValue }> };
            scopeMetrics: Array<{ metrics: Array<{ name: string }> }>;
          }>;
        };
        for (const resource of pushed.resourceMetrics) {
          metricPushes.push({
            resource: attributes(resource.resource?.attributes),
            names: resource.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => metric.name)),
            headers: request.headers,
          });
        }
        return Response.json({});
      }
      if (request.method !== "POST" || path !== "/v1/traces")
        return new Response("not found", { status: 404 });
      if (!request.headers.get("content-type")?.includes("application/json")) {
        return new Response("JSON only", { status: 415 });
      }
      const body = await request.text();
      bodies.push(body);
      headers.push(request.headers);
      const parsed = JSON.parse(body) as {
        resourceSpans: Array<{
          resource?: { attributes?: Array<{ key: string; value: OtlpValue }> };
          scopeSpans: Array<{ spans: Array<Record<string, unknown>> }>;
        }>;
      };
      for (const resource of parsed.resourceSpans) {
        const described = attributes(resource.resource?.attributes);
        const service = described["service.name"];
        for (const scope of resource.scopeSpans) {
          for (const span of scope.spans) {
            spans.push({
              traceId: span.traceId as string,
              spanId: span.spanId as string,
              ...(span.parentSpanId ? { parentSpanId: span.parentSpanId as string } : {}),
              name: span.name as string,
              kind: span.kind as number,
              startMs: Number(BigInt(span.startTimeUnixNano as string) / 1_000_000n),
              attributes: attributes(span.attributes as Array<{ key: string; value: OtlpValue }>),
              links: ((span.links ?? []) as Array<{ traceId: string; spanId: string }>).map((l) => ({
                traceId: l.traceId,
                spanId: l.spanId,
              })),
              service,
              environment: described["deployment.environment"],
            });
          }
        }
      }
      return Response.json({});
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    spans,
    bodies,
    headers,
    metricPushes,
    stop: () => server.stop(true),
  };
}

// Values that go only into the exporter's request headers (a collector's API key in production: a secret).
const apiKey = `otlp-key-${hex(12)}`;
const tenant = `tenant-${hex(6)}`;

let receiver: ReturnType<typeof startReceiver> | undefined;
let running: CommerceWorker | undefined;

beforeAll(async () => {
  if (skip) return;
  receiver = startReceiver();
  running = await startCommerceWorker("trace_cf", {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${apiKey},x-otlp-tenant=${tenant}`,
    OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=trace-test",
    // Metrics are pushed when a request ends and this long has passed (workerd runs no timers between requests).
    OTEL_METRIC_EXPORT_INTERVAL: "200",
  });
}, 50_000);

afterAll(async () => {
  await running?.stop();
  receiver?.stop();
});

describe("traces (workerd)", () => {
  test.skipIf(Boolean(skip))(
    "one trace id covers the gateway, the Durable Object turns and the queue hops; parents and links are right",
    async () => {
      const api = (running as CommerceWorker).client;
      const received = receiver as ReturnType<typeof startReceiver>;
      const { traceId, callerSpanId } = await placeTracedOrder(api);

      let spans: Received[] = [];
      const turns = () => spans.filter((span) => span.name.startsWith("turn "));
      await eventually(() => {
        spans = received.spans.filter((span) => span.traceId === traceId);
        // Complete once the order confirmed (its last turn) and every span's parent arrived too.
        const ids = new Set(spans.map((span) => span.spanId));
        return (
          turns().some((span) => span.name === "turn order PaymentCaptured") &&
          spans.some((span) => span.name === "create OrderConfirmed") &&
          spans.every((span) => span.parentSpanId === callerSpanId || ids.has(span.parentSpanId as string))
        );
      }, "the order's spans at the OTLP receiver");
      if (process.env.TRACE_DUMP)
        for (const s of spans) console.log(s.kind, s.name, s.spanId, "<-", s.parentSpanId, s.links);
      const byId = new Map(spans.map((span) => [span.spanId, span]));
      expect(spans.every((span) => span.service === "edgewise-worker")).toBe(true);
      expect(spans.every((span) => span.environment === "trace-test")).toBe(true);
      // Wall-clock times (workerd's clock only moves on I/O, but it is the epoch's).
      expect(spans.every((span) => Math.abs(span.startMs - Date.now()) < 60_000)).toBe(true);

      // The gateway's SERVER span, and the Durable Objects' turns under it with the attributes the local host
      // records; the order's first turn is the request's child (its context crossed the RPC call).
      expectGatewayAndTurns(
        spans.map((span) => ({ ...span, kind: kindName(span.kind) })),
        callerSpanId,
      );

      // Each CONSUMER span (a signed delivery back to the Worker) is parented on, and linked to, the PRODUCER span
      // that created its message in a turn; a turn runs under a delivery.
      const producers = spans.filter((span) => span.kind === PRODUCER);
      const consumers = spans.filter((span) => span.kind === CONSUMER);
      expect(producers.length).toBeGreaterThanOrEqual(2);
      expect(consumers.length).toBeGreaterThanOrEqual(2);
      for (const consumer of consumers) {
        const producer = byId.get(consumer.parentSpanId as string);
        expect(producer?.kind).toBe(PRODUCER);
        expect(consumer.links.some((link) => link.spanId === producer?.spanId)).toBe(true);
        expect(producer?.attributes["messaging.message.id"]).toBe(
          consumer.attributes["messaging.message.id"],
        );
        expect(typeof consumer.attributes["edgewise.delivery.retried"]).toBe("number");
      }
      expect(
        producers.some((producer) => byId.get(producer.parentSpanId as string)?.name.startsWith("turn ")),
      ).toBe(true);
      expect(turns().some((turn) => byId.get(turn.parentSpanId as string)?.kind === CONSUMER)).toBe(true);
      expect(spans.some((span) => span.name === "billing PaymentRequested")).toBe(true);

      // OTEL_EXPORTER_OTLP_HEADERS went with every export, and nowhere into what was exported.
      expect(received.headers.length).toBeGreaterThan(0);
      for (const headers of received.headers) {
        expect(headers.get("authorization")).toBe(`Bearer ${apiKey}`);
        expect(headers.get("x-otlp-tenant")).toBe(tenant);
      }
      for (const body of received.bodies) {
        expect(body.includes(apiKey)).toBe(false);
        expect(body.includes(tenant)).toBe(false);
      }
      expect((running as CommerceWorker).worker.output().includes(apiKey)).toBe(false);
    },
    30_000,
  );

  test.skipIf(Boolean(skip))(
    "the Worker writes one JSON access line per request, as a node does, named by its SERVER span and redacted",
    async () => {
      const worker = running as CommerceWorker;
      const received = receiver as ReturnType<typeof startReceiver>;
      const sku = uniqueName("access-sku");
      const traceId = hex(16);
      const requestId = `access-${hex(6)}`;
      const read = await worker.client.call("GET", `/v1/inventory/${sku}`, {
        headers: { traceparent: `00-${traceId}-${hex(8)}-01`, "x-request-id": requestId },
      });
      expect(read.status).toBe(404);
      // A request id the gateway accepts (short, URL-safe) that has a token's shape: echoed, never logged.
      const tokenShaped = `Ab1${"xY9".repeat(15)}`;
      const refused = await fetch(`${worker.worker.match}/v1/orders`, {
        method: "POST",
        headers: { "x-request-id": tokenShaped, authorization: `Bearer ${tokenShaped}` },
      });
      expect(refused.status).toBe(401);
      expect(refused.headers.get("x-request-id")).toBe(tokenShaped);
      await refused.arrayBuffer();

      // wranglerRecords skips a line it cannot parse: stdout and stderr arrive in chunks, interleaved, and the last
      // line may still be on its way (a bare JSON.parse of each line failed this test in CI once).
      const lines = () => wranglerRecords(worker.worker.output()).filter((line) => line.msg === "request");
      let server: Received | undefined;
      // Both access lines: the 401's is written after the read's, and may reach wrangler's output later.
      await eventually(() => {
        server = received.spans.find((span) => span.traceId === traceId && span.kind === 2);
        return (
          server !== undefined &&
          lines().some((line) => line.request_id === requestId) &&
          lines().some((line) => line.route === "/v1/orders" && line.status === 401)
        );
      }, "the read's access line, the refusal's and the read's SERVER span");
      const line = lines().find((record) => record.request_id === requestId);
      // The fields a node's access line has (edge/middleware/request-id), in the same order.
      expect(Object.keys(line ?? {})).toEqual([
        "time",
        "level",
        "msg",
        "trace_id",
        "span_id",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
        "client_ip",
        "sub",
      ]);
      expect(line).toMatchObject({
        level: "info",
        method: "GET",
        route: "/v1/inventory/:sku",
        status: 404,
        trace_id: traceId,
        span_id: server?.spanId,
        client_ip: "127.0.0.1",
      });
      expect(line?.route).not.toContain(sku);
      expect(lines()).toContainEqual(
        expect.objectContaining({ route: "/v1/orders", status: 401, request_id: "[redacted]" }),
      );
      expect(worker.worker.output()).not.toContain(tokenShaped);
    },
    30_000,
  );

  test.skipIf(Boolean(skip))(
    "each isolate pushes its metrics over OTLP: the gateway's requests and the Durable Objects' turns",
    async () => {
      const api = (running as CommerceWorker).client;
      const received = receiver as ReturnType<typeof startReceiver>;
      const [pear, bob] = [uniqueName("pear"), uniqueName("bob")];
      await api.putSku(pear, 10, 100);
      await api.putAccount(bob, 10_000);
      const placed = await api.place(bob, [{ sku: pear, quantity: 1 }]);
      expect((await api.settle(placed.body.orderId)).status).toBe("confirmed");
      const pushedBy = (role: string) =>
        received.metricPushes.filter((push) => push.resource["edgewise.isolate.role"] === role);
      await eventually(
        () =>
          pushedBy("gateway").some((push) => push.names.includes("http.server.request.duration")) &&
          pushedBy("actors").some((push) => push.names.includes("edgewise.actor.turn.duration")),
        "metrics pushes from the gateway and the actor objects",
      );
      for (const push of received.metricPushes) {
        expect(push.resource["service.name"]).toBe("edgewise-worker");
        expect(push.resource["deployment.environment"]).toBe("trace-test");
        expect(typeof push.resource["service.instance.id"]).toBe("string");
        expect(push.headers.get("authorization")).toBe(`Bearer ${apiKey}`);
      }
    },
    30_000,
  );
});
