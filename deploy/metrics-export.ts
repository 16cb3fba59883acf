// Pushes a node's metrics over OTLP/HTTP (JSON) when an OTLP endpoint is configured: every interval, and at stop.
import type { Logger } from "../shared/telemetry/log/index.ts";
import type { MetricsRegistry } from "../shared/telemetry/metrics/index.ts";
import { toOtlpMetrics } from "../shared/telemetry/metrics/otlp.ts";

export interface OtlpMetricsConfig {
  /** Where to POST: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as given, or OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/metrics`. */
  url: string;
  /** OTEL_EXPORTER_OTLP_HEADERS, then OTEL_EXPORTER_OTLP_METRICS_HEADERS over it. Never logged. */
  headers: Record<string, string>;
  /** OTEL_METRIC_EXPORT_INTERVAL, ms; OTel's default is 60 s. */
  intervalMs: number;
  /** OTEL_METRIC_EXPORT_TIMEOUT, ms; OTel's default is 30 s. */
  timeoutMs: number;
  /** OTEL_SERVICE_NAME (default `edgewise`) and OTEL_RESOURCE_ATTRIBUTES. */
  resource: Record<string, string>;
}

type Env = (name: string) => string | undefined;

const processEnv: Env = (name) =>
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];

/** `key=value,key2=value2`, values percent-decoded (the OTel spec's format for headers and resource attributes). */
function keyValueList(name: string, text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [index, item] of (text ?? "").split(",").entries()) {
    if (item.trim() === "") continue;
    const at = item.indexOf("=");
    // The entry itself is not echoed: it may be a credential pasted without its name.
    if (at <= 0) throw new Error(`${name}: entry ${index + 1} is not key=value`);
    try {
      out[decodeURIComponent(item.slice(0, at).trim())] = decodeURIComponent(item.slice(at + 1).trim());
    } catch {
      throw new Error(`${name}: an entry is not valid percent-encoding`);
    }
  }
  return out;
}

function milliseconds(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text.trim() === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive whole number of ms`);
  return value;
}

/**
 * The export settings, from OTel's standard variables; undefined when no OTLP endpoint is set or
 * OTEL_METRICS_EXPORTER is `none`. Throws on a malformed value, naming the variable (header values never appear).
 */
export function otlpMetricsConfigFromEnv(env: Env = processEnv): OtlpMetricsConfig | undefined {
  const exporter = env("OTEL_METRICS_EXPORTER")?.trim();
  if (exporter === "none") return undefined;
  if (exporter && exporter !== "otlp") {
    throw new Error(`OTEL_METRICS_EXPORTER=${exporter}: only "otlp" and "none" are supported`);
  }
  const own = env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")?.trim();
  const base = env("OTEL_EXPORTER_OTLP_ENDPOINT")?.trim();
  const url = own || (base ? `${base.replace(/\/+$/, "")}/v1/metrics` : undefined);
  if (!url) return undefined;
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new Error(
      `${own ? "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT"} must be an http(s) URL`,
    );
  }
  return {
    url,
    headers: {
      ...keyValueList("OTEL_EXPORTER_OTLP_HEADERS", env("OTEL_EXPORTER_OTLP_HEADERS")),
      ...keyValueList("OTEL_EXPORTER_OTLP_METRICS_HEADERS", env("OTEL_EXPORTER_OTLP_METRICS_HEADERS")),
    },
    intervalMs: milliseconds("OTEL_METRIC_EXPORT_INTERVAL", env("OTEL_METRIC_EXPORT_INTERVAL"), 60_000),
    timeoutMs: milliseconds("OTEL_METRIC_EXPORT_TIMEOUT", env("OTEL_METRIC_EXPORT_TIMEOUT"), 30_000),
    resource: {
      ...keyValueList("OTEL_RESOURCE_ATTRIBUTES", env("OTEL_RESOURCE_ATTRIBUTES")),
      "service.name": env("OTEL_SERVICE_NAME")?.trim() || "edgewise",
    },
  };
}

export interface MetricsExporter {
  /** Collects and posts now; false when the collector did not take it (logged, never thrown). */
  exportNow(): Promise<boolean>;
  /** Stops the interval and sends a last export, so the final counts reach the collector. */
  stop(): Promise<void>;
}

/**
 * Starts the periodic export. Points are cumulative, so an export that fails loses nothing: the next one carries
 * every count. Exports never overlap; one still running when the interval comes round is not doubled.
 */
export function startOtlpMetricsExport(
  registry: MetricsRegistry,
  config: OtlpMetricsConfig,
  logger: Logger,
  fetchImpl: typeof fetch = fetch,
): MetricsExporter {
  const startTimeMs = Date.now();
  let running: Promise<boolean> | undefined;
  let failing = false;

  const post = async (): Promise<boolean> => {
    const families = await registry.collect();
    const body = JSON.stringify(
      toOtlpMetrics(families, { resource: config.resource, startTimeMs, timeMs: Date.now() }),
    );
    try {
      const response = await fetchImpl(config.url, {
        method: "POST",
        headers: { ...config.headers, "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(config.timeoutMs),
      });
      await response.body?.cancel().catch(() => {});
      if (!response.ok) throw new Error(`the collector answered ${response.status}`);
      if (failing) logger.info("metrics export: the collector takes exports again", { url: config.url });
      failing = false;
      return true;
    } catch (error) {
      // Once per outage, not once per interval. The URL is logged; the headers (credentials) never are.
      if (!failing) {
        logger.warn("metrics export failed; the next export carries every count", {
          url: config.url,
          reason: error instanceof Error ? error.message : String(error),
        });
      }
      failing = true;
      return false;
    }
  };
  const exportNow = (): Promise<boolean> => {
    running ??= post().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => void exportNow(), config.intervalMs);
  (timer as { unref?: () => void }).unref?.();
  let stopped = false;
  return {
    exportNow,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      await exportNow();
    },
  };
}
