// Metrics on Workers: one registry per isolate and role, pushed over OTLP after requests when an endpoint is set.
/*
 * A Worker's memory is per isolate, and a scrape of /metrics reaches one isolate of many, so on Workers the
 * numbers that add up are the pushed ones: each isolate pushes its own cumulative points under its own
 * `service.instance.id`, and the collector sums the instances. workerd runs no timers between requests, so a push
 * happens when a request, an RPC call or an alarm ends and an interval has passed (OTEL_METRIC_EXPORT_INTERVAL).
 */
import { createLogger } from "../../../shared/telemetry/log/index.ts";
import { EdgewiseMetrics } from "../../../shared/telemetry/metrics/index.ts";
import { OtlpMetricsPusher, otlpMetricsConfig } from "../../../shared/telemetry/metrics/otlp-push.ts";
import { envReader } from "../../../shared/telemetry/otlp-env.ts";

/** `gateway`: the Worker's fetch handler (HTTP, deliveries, breakers). `actors`: the Durable Objects' turns. */
export type IsolateRole = "gateway" | "actors";

export interface IsolateMetrics {
  metrics: EdgewiseMetrics;
  /** Whether an OTLP endpoint is set: without one, the actor objects record nothing (nothing would read it). */
  pushes: boolean;
  /** Starts a push when one is due (in the caller's waitUntil); does nothing without an OTLP endpoint. */
  pushIfDue(waitUntil: (promise: Promise<unknown>) => void): void;
}

const isolates = new Map<IsolateRole, IsolateMetrics>();
/** One id for this isolate's pushes, so the collector keeps each isolate's cumulative series apart. Made on first
 * use: workerd allows no random values at module scope. */
let instanceId: string | undefined;

/**
 * The isolate's metrics for a role, made by the first call (env is the same for every request of an isolate).
 * Throws `config.invalid` on a malformed OTEL_* value, naming the variable, never a header's value.
 */
export function isolateMetrics(env: unknown, role: IsolateRole): IsolateMetrics {
  const known = isolates.get(role);
  if (known) return known;
  const metrics = new EdgewiseMetrics();
  instanceId ??= crypto.randomUUID();
  const read = envReader(env);
  const config = otlpMetricsConfig(read, "edgewise-worker");
  const pusher = config
    ? new OtlpMetricsPusher(
        metrics.registry,
        {
          ...config,
          resource: {
            ...config.resource,
            "service.instance.id": instanceId,
            "edgewise.isolate.role": role,
          },
        },
        createLogger({ fields: { component: "metrics-export", role } }),
      )
    : undefined;
  const made: IsolateMetrics = {
    metrics,
    pushes: pusher !== undefined,
    pushIfDue(waitUntil) {
      const push = pusher?.pushIfDue();
      if (push) waitUntil(push);
    },
  };
  isolates.set(role, made);
  return made;
}
