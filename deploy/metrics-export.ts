// Pushes a node's metrics over OTLP/HTTP (JSON) when an OTLP endpoint is configured: every interval, and at stop.
import type { Logger } from "../shared/telemetry/log/index.ts";
import type { MetricsRegistry } from "../shared/telemetry/metrics/index.ts";
import {
  type OtlpMetricsConfig,
  OtlpMetricsPusher,
  type PostFetch,
  otlpMetricsConfig,
} from "../shared/telemetry/metrics/otlp-push.ts";
import { type EnvReader, envReader } from "../shared/telemetry/otlp-env.ts";

export type { OtlpMetricsConfig };

/** The settings from this process's environment (shared/telemetry/metrics/otlp-push.ts says which variables). */
export function otlpMetricsConfigFromEnv(
  env: EnvReader = envReader((globalThis as { process?: { env?: unknown } }).process?.env),
): OtlpMetricsConfig | undefined {
  return otlpMetricsConfig(env);
}

export interface MetricsExporter {
  /** Stops the interval and sends a last export, so the final counts reach the collector. */
  stop(): Promise<void>;
}

/** Starts the periodic export: cumulative points, so an export that fails loses nothing. */
export function startOtlpMetricsExport(
  registry: MetricsRegistry,
  config: OtlpMetricsConfig,
  logger: Logger,
  fetchImpl?: PostFetch,
): MetricsExporter {
  const pusher = new OtlpMetricsPusher(registry, config, logger, fetchImpl);
  const timer = setInterval(() => void pusher.push(), config.intervalMs);
  (timer as { unref?: () => void }).unref?.();
  let stopped = false;
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await pusher.settled();
      await pusher.push();
    },
  };
}
