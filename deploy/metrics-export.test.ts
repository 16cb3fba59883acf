// OTLP metrics export settings from OTel's standard variables: defaults, precedence, and clear refusals.
import { describe, expect, test } from "bun:test";
import { otlpMetricsConfigFromEnv } from "./metrics-export.ts";

const from = (vars: Record<string, string>) => otlpMetricsConfigFromEnv((name) => vars[name]);

describe("otlpMetricsConfigFromEnv", () => {
  test("off without an endpoint, or with OTEL_METRICS_EXPORTER=none", () => {
    expect(from({})).toBeUndefined();
    expect(
      from({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_METRICS_EXPORTER: "none" }),
    ).toBe(undefined);
  });

  test("the base endpoint gets /v1/metrics; the metrics endpoint is used as given; OTel's defaults", () => {
    expect(from({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/" })).toEqual({
      url: "http://127.0.0.1:4318/v1/metrics",
      headers: {},
      intervalMs: 60_000,
      timeoutMs: 30_000,
      resource: { "service.name": "edgewise" },
    });
    const config = from({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "https://collector.example/custom",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20a,x-team=core",
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: "authorization=Bearer%20b",
      OTEL_METRIC_EXPORT_INTERVAL: "5000",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,service.name=ignored",
      OTEL_SERVICE_NAME: "orders",
    });
    expect(config?.url).toBe("https://collector.example/custom");
    expect(config?.headers).toEqual({ authorization: "Bearer b", "x-team": "core" });
    expect(config?.intervalMs).toBe(5000);
    expect(config?.resource).toEqual({ "deployment.environment": "prod", "service.name": "orders" });
  });

  test("malformed settings are refused, naming the variable and never echoing a header value", () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" };
    expect(() => from({ ...base, OTEL_METRIC_EXPORT_INTERVAL: "soon" })).toThrow(
      "OTEL_METRIC_EXPORT_INTERVAL",
    );
    expect(() => from({ ...base, OTEL_METRICS_EXPORTER: "prometheus" })).toThrow("OTEL_METRICS_EXPORTER");
    expect(() => from({ OTEL_EXPORTER_OTLP_ENDPOINT: "ftp://x" })).toThrow("OTEL_EXPORTER_OTLP_ENDPOINT");
    let message = "";
    try {
      from({ ...base, OTEL_EXPORTER_OTLP_HEADERS: "authorization=ok,s3cr3t-token-without-equals" });
    } catch (error) {
      message = String(error);
    }
    expect(message).toContain("OTEL_EXPORTER_OTLP_HEADERS");
    expect(message).toContain("entry 2");
    expect(message).not.toContain("s3cr3t");
  });
});
