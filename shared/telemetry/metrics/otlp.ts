// Encodes collected metric families as an OTLP/HTTP JSON ExportMetricsServiceRequest (cumulative temporality).
/*
 * Written here rather than taken from `@opentelemetry/otlp-transformer`: that encoder takes the SDK's
 * `ResourceMetrics`, and the instruments live in this project's registry (registry.ts says why), so the mapping
 * would go through the SDK's data model only to come out as the same JSON. The format is the OTLP protobuf's
 * JSON mapping: int64 fields (times, counts) as decimal strings, enums as numbers, attributes as key/value lists.
 */
import type { HistogramPoint, Labels, MetricFamily, NumberPoint } from "./registry.ts";

/** AGGREGATION_TEMPORALITY_CUMULATIVE: every point counts from the process's start, as Prometheus does. */
const cumulative = 2;

export interface OtlpMetricsOptions {
  /** Resource attributes, `service.name` first of all. */
  resource: Record<string, string>;
  /** The instrumentation scope: the library that records the instruments. */
  scope?: { name: string; version?: string };
  /** When the points started counting (the registry's creation), in epoch ms. */
  startTimeMs: number;
  /** The collection time, in epoch ms. */
  timeMs: number;
}

type AnyValue = { stringValue: string };
type KeyValue = { key: string; value: AnyValue };

const attributes = (labels: Readonly<Record<string, string>>): KeyValue[] =>
  Object.entries(labels)
    .filter(([, value]) => value !== "")
    .map(([key, value]) => ({ key, value: { stringValue: value } }));

/** Epoch ms to the decimal string of epoch nanoseconds, exact for whole and fractional ms. */
export function unixNano(ms: number): string {
  const whole = Math.floor(ms);
  const micros = Math.round((ms - whole) * 1_000_000);
  return (BigInt(whole) * 1_000_000n + BigInt(micros)).toString();
}

/**
 * The OTel name of an instrument registered under its Prometheus name: the unit suffix (`_seconds` for `s`,
 * `_ratio` for `1`) and a counter's `_total` come off, and `_` becomes `.`, which is how Prometheus's OTLP
 * translation runs the other way (`http.server.request.duration` ↔ `http_server_request_duration_seconds`).
 */
export function otelName(family: Pick<MetricFamily, "name" | "type" | "unit">): string {
  let name = family.name;
  if (family.type === "counter" && name.endsWith("_total")) name = name.slice(0, -"_total".length);
  if (family.unit === "s" && name.endsWith("_seconds")) name = name.slice(0, -"_seconds".length);
  if (family.unit === "1" && name.endsWith("_ratio")) name = name.slice(0, -"_ratio".length);
  return name.replaceAll("_", ".");
}

function metric(family: MetricFamily, start: string, time: string): Record<string, unknown> {
  const base = { name: otelName(family), description: family.help, unit: family.unit ?? "" };
  if (family.type === "histogram") {
    return {
      ...base,
      histogram: {
        aggregationTemporality: cumulative,
        dataPoints: (family.points as HistogramPoint[]).map((point) => ({
          attributes: attributes(point.labels),
          startTimeUnixNano: start,
          timeUnixNano: time,
          count: String(point.count),
          sum: point.sum,
          bucketCounts: point.counts.map(String),
          explicitBounds: [...point.bounds],
        })),
      },
    };
  }
  const dataPoints = (family.points as NumberPoint[]).map((point) => ({
    attributes: attributes(point.labels as Labels),
    startTimeUnixNano: start,
    timeUnixNano: time,
    asDouble: point.value,
  }));
  return family.type === "counter"
    ? { ...base, sum: { aggregationTemporality: cumulative, isMonotonic: true, dataPoints } }
    : { ...base, gauge: { dataPoints } };
}

/** One resource, one scope, one metric per family. Families with no points are left out, as OTLP expects. */
export function toOtlpMetrics(families: readonly MetricFamily[], options: OtlpMetricsOptions): unknown {
  const start = unixNano(options.startTimeMs);
  const time = unixNano(options.timeMs);
  return {
    resourceMetrics: [
      {
        resource: { attributes: attributes(options.resource) },
        scopeMetrics: [
          {
            scope: options.scope ?? { name: "edgewise" },
            metrics: families
              .filter((family) => family.points.length > 0)
              .map((family) => metric(family, start, time)),
          },
        ],
      },
    ],
  };
}
