// OTLP metrics push on a whole node: a collector on 127.0.0.1 receives /metrics' instruments, and they move.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { uniqueName } from "../commerce/client.ts";

interface Received {
  at: number;
  authorization: string | null;
  contentType: string | null;
  body: OtlpRequest;
}
interface OtlpPoint {
  attributes: Array<{ key: string; value: { stringValue: string } }>;
  count?: string;
  asDouble?: number;
  bucketCounts?: string[];
  explicitBounds?: number[];
  startTimeUnixNano: string;
  timeUnixNano: string;
}
interface OtlpMetric {
  name: string;
  unit: string;
  histogram?: { aggregationTemporality: number; dataPoints: OtlpPoint[] };
  sum?: { aggregationTemporality: number; isMonotonic: boolean; dataPoints: OtlpPoint[] };
  gauge?: { dataPoints: OtlpPoint[] };
}
interface OtlpRequest {
  resourceMetrics: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue: string } }> };
    scopeMetrics: Array<{ scope: { name: string }; metrics: OtlpMetric[] }>;
  }>;
}

const secret = `otlp-${crypto.randomUUID()}`;
const received: Received[] = [];
/** While set, the collector refuses exports (as one whose token expired would). */
let refusing = false;
let refused = 0;
const collector = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    if (request.method !== "POST" || new URL(request.url).pathname !== "/otlp/v1/metrics") {
      return new Response("not found", { status: 404 });
    }
    if (refusing) {
      refused++;
      return new Response("unauthorized", { status: 401 });
    }
    received.push({
      at: Date.now(),
      authorization: request.headers.get("authorization"),
      contentType: request.headers.get("content-type"),
      body: (await request.json()) as OtlpRequest,
    });
    return new Response("{}", { headers: { "content-type": "application/json" } });
  },
});

const logLines: string[] = [];
let running: CommerceNode;
const variables = {
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `http://127.0.0.1:${collector.port}/otlp/v1/metrics`,
  OTEL_EXPORTER_OTLP_METRICS_HEADERS: `authorization=Bearer%20${secret}`,
  OTEL_METRIC_EXPORT_INTERVAL: "150",
  OTEL_SERVICE_NAME: "edgewise-otlp-test",
};
beforeAll(async () => {
  // The export reads OTel's standard variables at start; they are process-wide, so they are put back at once.
  Object.assign(process.env, variables);
  try {
    running = await startCommerceNode("metrics_otlp", {}, { log: (line) => logLines.push(line) });
  } finally {
    for (const name of Object.keys(variables)) delete process.env[name];
  }
}, 30_000);
afterAll(() => {
  collector.stop(true);
});

/** The `http.server.request.duration` count for one route and status, in one export (0 when absent). */
function requestCount(request: OtlpRequest, route: string, status: string): number {
  const metric = request.resourceMetrics[0]?.scopeMetrics[0]?.metrics.find(
    (m) => m.name === "http.server.request.duration",
  );
  let count = 0;
  for (const point of metric?.histogram?.dataPoints ?? []) {
    const labels = Object.fromEntries(point.attributes.map((a) => [a.key, a.value.stringValue]));
    if (labels.http_route === route && labels.http_response_status_code === status)
      count += Number(point.count);
  }
  return count;
}

async function exportAfter(at: number): Promise<Received> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const latest = received.at(-1);
    if (latest && latest.at > at) return latest;
    if (Date.now() > deadline) throw new Error("no export arrived within 5 s");
    await Bun.sleep(25);
  }
}

test("the node pushes its instruments over OTLP/HTTP JSON, with the configured headers, and they move", async () => {
  const api = running.client;
  const sku = uniqueName("otlp-sku");
  const first = await exportAfter(0);
  expect(first.contentType).toBe("application/json");
  expect(first.authorization).toBe(`Bearer ${secret}`);
  const resource = Object.fromEntries(
    first.body.resourceMetrics[0]?.resource.attributes.map((a) => [a.key, a.value.stringValue]) ?? [],
  );
  expect(resource["service.name"]).toBe("edgewise-otlp-test");

  const route = "/v1/inventory/:sku";
  const before = requestCount(first.body, route, "404");
  const reads = 7;
  for (let i = 0; i < reads; i++) expect((await api.call("GET", `/v1/inventory/${sku}`)).status).toBe(404);
  const sent = Date.now();
  // The first export to arrive after the last answer may have been collected before that read was counted (its
  // POST was still on its way): wait for the next ones until the reads are all in (more would fail below).
  let after = await exportAfter(sent);
  for (let more = 0; requestCount(after.body, route, "404") - before < reads && more < 5; more++)
    after = await exportAfter(after.at);
  expect(requestCount(after.body, route, "404") - before).toBe(reads);

  const metrics = after.body.resourceMetrics[0]?.scopeMetrics[0]?.metrics ?? [];
  const byName = new Map(metrics.map((m) => [m.name, m]));
  // The histogram keeps its explicit bounds, one more bucket count than bounds, counts adding up to the total.
  const http = byName.get("http.server.request.duration");
  expect(http?.unit).toBe("s");
  expect(http?.histogram?.aggregationTemporality).toBe(2);
  for (const point of http?.histogram?.dataPoints ?? []) {
    expect(point.bucketCounts?.length).toBe((point.explicitBounds?.length ?? 0) + 1);
    expect(point.bucketCounts?.reduce((sum, n) => sum + Number(n), 0)).toBe(Number(point.count));
    expect(BigInt(point.timeUnixNano)).toBeGreaterThanOrEqual(BigInt(point.startTimeUnixNano));
  }
  // Counters are monotonic cumulative sums, named without Prometheus's `_total`.
  const decisions = byName.get("edgewise.rate.limit.decisions");
  expect(decisions?.sum?.isMonotonic).toBe(true);
  expect(byName.has("edgewise.rate.limit.decisions.total")).toBe(false);
});

test("a refused export is logged once, without the headers; the next one carries every count", async () => {
  const route = "/v1/inventory/:sku";
  const before = requestCount((received.at(-1) as Received).body, route, "404");
  refusing = true;
  const refusedBefore = refused;
  expect((await running.client.call("GET", `/v1/inventory/${uniqueName("otlp-refused")}`)).status).toBe(404);
  const deadline = Date.now() + 5_000;
  while (refused < refusedBefore + 2 && Date.now() < deadline) await Bun.sleep(25);
  expect(refused).toBeGreaterThanOrEqual(refusedBefore + 2);
  const warnings = logLines.filter((line) => line.includes("metrics export failed"));
  expect(warnings.length).toBe(1); // once per outage, not once per interval
  expect(warnings[0]).toContain("401");
  refusing = false;
  const after = await exportAfter(Date.now());
  expect(requestCount(after.body, route, "404")).toBe(before + 1);
});

test("stopping the node sends a last export with every request it served; the header never reaches a log", async () => {
  const sku = uniqueName("otlp-last");
  const last = received.at(-1) as Received;
  const before = requestCount(last.body, "/v1/inventory/:sku", "404");
  expect((await running.client.call("GET", `/v1/inventory/${sku}`)).status).toBe(404);
  const stopping = Date.now();
  await running.stop();
  const final = received.at(-1) as Received;
  expect(final.at).toBeGreaterThanOrEqual(stopping);
  expect(requestCount(final.body, "/v1/inventory/:sku", "404")).toBe(before + 1);
  expect(logLines.some((line) => line.includes("metrics export"))).toBe(true);
  expect(logLines.some((line) => line.includes(secret))).toBe(false);
});
