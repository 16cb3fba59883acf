// The registry and its Prometheus text: exact lines, escaping, histogram buckets, and two real parsers agree.
import { describe, expect, test } from "bun:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { getMetricsFromIterator, type PromHistogramData } from "prom2javascript";
import { EdgewiseMetrics, MetricsRegistry, renderPrometheus } from "./index.ts";

const render = async (registry: MetricsRegistry) => renderPrometheus(await registry.collect());

describe("Prometheus text", () => {
  test("counters and gauges: HELP, TYPE, labels in declared order, empty labels left out", async () => {
    const registry = new MetricsRegistry();
    const requests = registry.counter({
      name: "app_requests_total",
      help: "Requests.",
      labelNames: ["method", "code"],
    });
    requests.inc({ method: "GET", code: "200" });
    requests.add(2, { method: "GET", code: "200" });
    requests.add(-5, { method: "GET", code: "200" });
    requests.inc({ method: "POST", code: "" });
    const temperature = registry.gauge({ name: "app_temperature", help: "Degrees." });
    temperature.set(21.5);
    temperature.add(-1);

    expect(await render(registry)).toBe(
      [
        "# HELP app_requests_total Requests.",
        "# TYPE app_requests_total counter",
        'app_requests_total{method="GET",code="200"} 3',
        'app_requests_total{method="POST"} 1',
        "# HELP app_temperature Degrees.",
        "# TYPE app_temperature gauge",
        "app_temperature 20.5",
        "",
      ].join("\n"),
    );
  });

  test("label values escape backslash, quote and newline; HELP escapes backslash and newline", async () => {
    const registry = new MetricsRegistry();
    const tricky = 'C:\\dir\\"file"\nnext';
    registry
      .counter({ name: "odd_total", help: 'Back\\slash and\nnewline "quoted"', labelNames: ["path"] })
      .inc({ path: tricky });
    const text = await render(registry);
    expect(text).toContain('odd_total{path="C:\\\\dir\\\\\\"file\\"\\nnext"} 1');
    expect(text).toContain('# HELP odd_total Back\\\\slash and\\nnewline "quoted"');

    // The Python client's parser, ported: it unescapes exactly what was escaped.
    const [family] = parsePrometheusTextFormat(text);
    expect(family?.help).toBe('Back\\slash and\nnewline "quoted"');
    expect(family?.type).toBe("COUNTER");
    expect(family?.metrics[0]?.labels?.path).toBe(tricky);
  });

  test("histograms: cumulative _bucket with le, +Inf equal to _count, then _sum and _count", async () => {
    const registry = new MetricsRegistry();
    const latency = registry.histogram({
      name: "op_duration_seconds",
      help: "Latency.",
      labelNames: ["op"],
      buckets: [0.1, 0.5, 1],
    });
    for (const value of [0.05, 0.1, 0.3, 0.7, 2]) latency.record(value, { op: "read" });
    latency.record(0.2, { op: "write" });
    const text = await render(registry);
    expect(text).toBe(
      [
        "# HELP op_duration_seconds Latency.",
        "# TYPE op_duration_seconds histogram",
        'op_duration_seconds_bucket{op="read",le="0.1"} 2',
        'op_duration_seconds_bucket{op="read",le="0.5"} 3',
        'op_duration_seconds_bucket{op="read",le="1"} 4',
        'op_duration_seconds_bucket{op="read",le="+Inf"} 5',
        'op_duration_seconds_sum{op="read"} 3.15',
        'op_duration_seconds_count{op="read"} 5',
        'op_duration_seconds_bucket{op="write",le="0.1"} 0',
        'op_duration_seconds_bucket{op="write",le="0.5"} 1',
        'op_duration_seconds_bucket{op="write",le="1"} 1',
        'op_duration_seconds_bucket{op="write",le="+Inf"} 1',
        'op_duration_seconds_sum{op="write"} 0.2',
        'op_duration_seconds_count{op="write"} 1',
        "",
      ].join("\n"),
    );
    // prom2javascript groups by labels and refuses a histogram whose +Inf bucket is not its count.
    const parsed = await getMetricsFromIterator(text.split("\n")[Symbol.iterator]());
    const series = parsed.op_duration_seconds?.data as PromHistogramData[];
    expect(series.map((point) => [point.labels.op, point.count, point.buckets["0.5"]])).toEqual([
      ["read", 5, 3],
      ["write", 1, 1],
    ]);
  });

  test("an unlabelled histogram, and special values", async () => {
    const registry = new MetricsRegistry();
    registry.histogram({ name: "h_seconds", help: "h", buckets: [1] }).record(Number.POSITIVE_INFINITY);
    registry.gauge({ name: "g", help: "g" }).set(Number.NEGATIVE_INFINITY);
    const text = await render(registry);
    expect(text).toContain('h_seconds_bucket{le="1"} 0\nh_seconds_bucket{le="+Inf"} 1\nh_seconds_sum +Inf');
    expect(text).toContain("g -Inf");
    expect(parsePrometheusTextFormat(text).map((family) => family.type)).toEqual(["HISTOGRAM", "GAUGE"]);
  });

  test("an instrument with no series still has HELP and TYPE, and parses", async () => {
    const registry = new MetricsRegistry();
    registry.counter({ name: "nothing_yet_total", help: "Empty." });
    expect(await render(registry)).toBe(
      "# HELP nothing_yet_total Empty.\n# TYPE nothing_yet_total counter\n",
    );
  });
});

describe("registry", () => {
  test("asking again for a name returns the same instrument; another type under it throws", () => {
    const registry = new MetricsRegistry();
    const a = registry.counter({ name: "x_total", help: "x" });
    expect(registry.counter({ name: "x_total", help: "x" })).toBe(a);
    expect(() => registry.gauge({ name: "x_total", help: "x" })).toThrow(/already registered/);
    expect(() => registry.callbackGauge({ name: "x_total", help: "x", observe: () => {} })).toThrow();
  });

  test("bad names, label names and buckets are refused at definition", () => {
    const registry = new MetricsRegistry();
    expect(() => registry.counter({ name: "1bad", help: "" })).toThrow(/invalid metric name/);
    expect(() => registry.counter({ name: "ok_total", help: "", labelNames: ["le"] })).toThrow(/label/);
    expect(() => registry.counter({ name: "ok2_total", help: "", labelNames: ["__x"] })).toThrow(/label/);
    expect(() => registry.histogram({ name: "h", help: "", buckets: [1, 1] })).toThrow(/ascending/);
  });

  test("past maxSeries, new label sets share one _overflow series", async () => {
    const registry = new MetricsRegistry();
    const counter = registry.counter({ name: "ids_total", help: "ids", labelNames: ["id"], maxSeries: 2 });
    for (let i = 0; i < 10; i++) counter.inc({ id: String(i) });
    const text = await render(registry);
    expect(text).toContain('ids_total{id="0"} 1\nids_total{id="1"} 1\nids_total{id="_overflow"} 8');
  });

  test("callback instruments are read at collect time; a failing or slow one is left without points", async () => {
    const errors: string[] = [];
    const registry = new MetricsRegistry({ callbackTimeoutMs: 50, onError: (name) => errors.push(name) });
    let depth = 3;
    registry.callbackGauge({
      name: "depth",
      help: "d",
      labelNames: ["q"],
      observe: (observe) => observe(depth, { q: "a" }),
    });
    registry.callbackCounter({
      name: "broken_total",
      help: "b",
      observe: () => {
        throw new Error("down");
      },
    });
    registry.callbackGauge({ name: "slow", help: "s", observe: () => new Promise(() => {}) });
    expect(await render(registry)).toContain('depth{q="a"} 3');
    depth = 5;
    const text = await render(registry);
    expect(text).toContain('depth{q="a"} 5');
    expect(text).toContain("# TYPE broken_total counter\n# HELP slow s\n# TYPE slow gauge\n");
    expect(errors).toEqual(["broken_total", "slow", "broken_total", "slow"]);
  });
});

describe("EdgewiseMetrics", () => {
  test("HTTP methods outside the standard set are _OTHER; durations are in seconds", async () => {
    const metrics = new EdgewiseMetrics();
    metrics.request({ method: "GET", route: "/v1/orders/:orderId", status: 200, durationMs: 20 });
    metrics.request({ method: "BREW", route: "*", status: 404, durationMs: 1 });
    const text = renderPrometheus(await metrics.registry.collect());
    expect(text).toContain(
      'http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/v1/orders/:orderId",http_response_status_code="200",le="0.025"} 1',
    );
    expect(text).toContain(
      'http_server_request_duration_seconds_sum{http_request_method="GET",http_route="/v1/orders/:orderId",http_response_status_code="200"} 0.02',
    );
    expect(text).toContain('http_request_method="_OTHER"');
    expect(text).not.toContain("BREW");
  });

  test("outbox and broker sources are read once per scrape, however many instruments use them", async () => {
    const metrics = new EdgewiseMetrics();
    let outboxReads = 0;
    let brokerReads = 0;
    metrics.observeOutbox(() => {
      outboxReads++;
      return { pending: 4, oldestAgeMs: 1500 };
    });
    metrics.observeBroker(
      async () => {
        brokerReads++;
        return { deadLetters: 2, pending: 7 };
      },
      () => 11,
    );
    const text = renderPrometheus(await metrics.registry.collect());
    expect([outboxReads, brokerReads]).toEqual([1, 1]);
    expect(text).toContain("edgewise_outbox_pending 4\n");
    expect(text).toContain("edgewise_outbox_lag_seconds 1.5\n");
    expect(text).toContain("edgewise_dead_letters 2\n");
    expect(text).toContain("edgewise_broker_messages_pending 7\n");
    expect(text).toContain("edgewise_broker_deliveries_total 11\n");
    await metrics.registry.collect();
    expect([outboxReads, brokerReads]).toEqual([2, 2]);
  });

  test("read-cache counters and hit ratio come from stats()", async () => {
    const metrics = new EdgewiseMetrics();
    const stats = { hits: 3, misses: 1, errors: 0 };
    metrics.observeReadCache("reads", { stats: () => stats });
    let text = renderPrometheus(await metrics.registry.collect());
    expect(text).toContain('edgewise_read_cache_hits_total{cache="reads"} 3');
    expect(text).toContain('edgewise_read_cache_hit_ratio{cache="reads"} 0.75');
    stats.misses = 3;
    text = renderPrometheus(await metrics.registry.collect());
    expect(text).toContain('edgewise_read_cache_misses_total{cache="reads"} 3');
    expect(text).toContain('edgewise_read_cache_hit_ratio{cache="reads"} 0.5');
  });
});
