// The OTLP JSON encoding of the registry's instruments: names, temporality, points and times.
import { describe, expect, test } from "bun:test";
import { otelName, toOtlpMetrics, unixNano } from "./otlp.ts";
import { MetricsRegistry } from "./registry.ts";

interface PointJson {
  attributes: unknown[];
  asDouble?: number;
  count?: string;
}
interface OtlpMetricJson {
  name: string;
  unit: string;
  sum: { aggregationTemporality: number; isMonotonic: boolean; dataPoints: PointJson[] };
  gauge: { dataPoints: PointJson[] };
  histogram: { dataPoints: PointJson[] };
}

describe("toOtlpMetrics", () => {
  test("counters, gauges and histograms map to OTLP sums, gauges and histograms", async () => {
    const registry = new MetricsRegistry();
    const requests = registry.counter({ name: "demo_requests_total", help: "h", labelNames: ["route"] });
    const depth = registry.gauge({ name: "demo_depth", help: "d" });
    const duration = registry.histogram({
      name: "demo_duration_seconds",
      help: "t",
      unit: "s",
      buckets: [0.1, 1],
    });
    registry.counter({ name: "demo_unused_total", help: "never recorded" });
    requests.inc({ route: "/a" });
    requests.add(2, { route: "/a" });
    depth.set(5);
    for (const seconds of [0.05, 0.5, 0.7, 3]) duration.record(seconds);

    const body = toOtlpMetrics(await registry.collect(), {
      resource: { "service.name": "svc" },
      startTimeMs: 1_000,
      timeMs: 2_000.5,
    }) as { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: OtlpMetricJson[] }> }> };
    const metrics = body.resourceMetrics[0]?.scopeMetrics[0]?.metrics ?? [];
    expect(metrics.map((m) => m.name)).toEqual(["demo.requests", "demo.depth", "demo.duration"]);
    const [sum, gauge, histogram] = metrics;
    expect(sum?.sum).toMatchObject({ aggregationTemporality: 2, isMonotonic: true });
    expect(sum?.sum.dataPoints[0]).toMatchObject({
      attributes: [{ key: "route", value: { stringValue: "/a" } }],
      asDouble: 3,
      startTimeUnixNano: "1000000000",
      timeUnixNano: "2000500000",
    });
    expect(gauge?.gauge.dataPoints[0]).toMatchObject({ attributes: [], asDouble: 5 });
    expect(histogram?.unit).toBe("s");
    expect(histogram?.histogram.dataPoints[0]).toMatchObject({
      count: "4",
      sum: 4.25,
      bucketCounts: ["1", "2", "1"],
      explicitBounds: [0.1, 1],
    });
  });

  test("OTel names come back from Prometheus names", () => {
    expect(otelName({ name: "http_server_request_duration_seconds", type: "histogram", unit: "s" })).toBe(
      "http.server.request.duration",
    );
    expect(otelName({ name: "edgewise_deliveries_total", type: "counter" })).toBe("edgewise.deliveries");
    expect(otelName({ name: "edgewise_read_cache_hit_ratio", type: "gauge", unit: "1" })).toBe(
      "edgewise.read.cache.hit",
    );
    // Only a counter loses `_total`, and only the declared unit's suffix comes off.
    expect(otelName({ name: "x_total", type: "gauge" })).toBe("x.total");
    expect(otelName({ name: "x_seconds", type: "gauge" })).toBe("x.seconds");
  });

  test("nanosecond times are exact decimal strings", () => {
    expect(unixNano(1_733_000_000_123)).toBe("1733000000123000000");
    expect(unixNano(0.25)).toBe("250000");
  });
});
