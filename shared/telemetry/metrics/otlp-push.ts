// Pushes a registry's snapshot to an OTLP/HTTP collector as JSON: the settings from OTel's variables, one push at a time.
import { EdgewiseError } from "../../errors/index.ts";
import type { Logger } from "../log/index.ts";
import { type EnvReader, otlpKeyValues, otlpResource, otlpSignalUrl } from "../otlp-env.ts";
import { toOtlpMetrics } from "./otlp.ts";
import type { MetricsRegistry } from "./registry.ts";

/** How a push is posted; a plain function, so workerd never sees `fetch` called on another object. */
export type PostFetch = (url: string, init: RequestInit) => Promise<Response>;

export interface OtlpMetricsConfig {
  /** Where to POST: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as given, or OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/metrics`. */
  url: string;
  /** OTEL_EXPORTER_OTLP_HEADERS, then OTEL_EXPORTER_OTLP_METRICS_HEADERS over it. Never logged. */
  headers: Record<string, string>;
  /** OTEL_METRIC_EXPORT_INTERVAL, ms; OTel's default is 60 s. */
  intervalMs: number;
  /** OTEL_METRIC_EXPORT_TIMEOUT, ms; OTel's default is 30 s. */
  timeoutMs: number;
  /** OTEL_RESOURCE_ATTRIBUTES, then `service.name` from OTEL_SERVICE_NAME (default `serviceName`). */
  resource: Record<string, string>;
}

function milliseconds(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text.trim() === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    throw new EdgewiseError("config.invalid", `${name} must be a positive whole number of ms`);
  }
  return value;
}

/**
 * The push settings, from OTel's standard variables; undefined when no OTLP endpoint is set or OTEL_METRICS_EXPORTER
 * is `none`. Throws `config.invalid` on a malformed value, naming the variable (header values never appear).
 */
export function otlpMetricsConfig(env: EnvReader, serviceName = "edgewise"): OtlpMetricsConfig | undefined {
  const exporter = env("OTEL_METRICS_EXPORTER")?.trim();
  if (exporter === "none") return undefined;
  if (exporter && exporter !== "otlp") {
    throw new EdgewiseError(
      "config.invalid",
      `OTEL_METRICS_EXPORTER=${exporter}: only "otlp" and "none" are supported`,
    );
  }
  const url = otlpSignalUrl(env, "metrics");
  if (!url) return undefined;
  return {
    url,
    headers: {
      ...otlpKeyValues("OTEL_EXPORTER_OTLP_HEADERS", env("OTEL_EXPORTER_OTLP_HEADERS"), { headers: true }),
      ...otlpKeyValues("OTEL_EXPORTER_OTLP_METRICS_HEADERS", env("OTEL_EXPORTER_OTLP_METRICS_HEADERS"), {
        headers: true,
      }),
    },
    intervalMs: milliseconds("OTEL_METRIC_EXPORT_INTERVAL", env("OTEL_METRIC_EXPORT_INTERVAL"), 60_000),
    timeoutMs: milliseconds("OTEL_METRIC_EXPORT_TIMEOUT", env("OTEL_METRIC_EXPORT_TIMEOUT"), 30_000),
    resource: otlpResource(env("OTEL_SERVICE_NAME")?.trim() || serviceName, env("OTEL_RESOURCE_ATTRIBUTES")),
  };
}

/**
 * Pushes the registry's cumulative points. A push that fails loses nothing (the next carries every count) and is
 * logged once per outage. Pushes never overlap: one asked for while another runs shares it. No timer of its own:
 * Bun and Deno drive it with an interval (deploy/metrics-export.ts), Workers after requests (`pushIfDue`).
 */
export class OtlpMetricsPusher {
  private readonly startTimeMs = Date.now();
  private running: Promise<boolean> | undefined;
  private failing = false;
  private lastPushAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly registry: MetricsRegistry,
    private readonly config: OtlpMetricsConfig,
    private readonly logger: Logger,
    private readonly fetchImpl: PostFetch = (url, init) => fetch(url, init),
  ) {}

  /** Collects and posts now; false when the collector did not take it. Never throws. */
  push(): Promise<boolean> {
    this.lastPushAt = Date.now();
    this.running ??= this.post().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Pushes when an interval has passed since the last push (or there was none); undefined otherwise. */
  pushIfDue(now = Date.now()): Promise<boolean> | undefined {
    return now - this.lastPushAt >= this.config.intervalMs ? this.push() : undefined;
  }

  /** Waits for a push under way, if any. */
  async settled(): Promise<void> {
    await this.running;
  }

  private async post(): Promise<boolean> {
    try {
      const families = await this.registry.collect();
      const body = JSON.stringify(
        toOtlpMetrics(families, {
          resource: this.config.resource,
          startTimeMs: this.startTimeMs,
          timeMs: Date.now(),
        }),
      );
      const response = await this.fetchImpl(this.config.url, {
        method: "POST",
        headers: { ...this.config.headers, "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      await response.body?.cancel().catch(() => {});
      if (!response.ok) throw new Error(`the collector answered ${response.status}`);
      if (this.failing)
        this.logger.info("metrics export: the collector takes exports again", { url: this.config.url });
      this.failing = false;
      return true;
    } catch (error) {
      // Once per outage, not once per interval. The URL is logged; the headers (credentials) never are.
      if (!this.failing) {
        this.logger.warn("metrics export failed; the next export carries every count", {
          url: this.config.url,
          reason: error instanceof Error ? error.message : String(error),
        });
      }
      this.failing = true;
      return false;
    }
  }
}
