// Security events (auth failures, rate-limit denials, signature failures, refused webhooks): recorded at a bounded rate.
import { type Clock, systemClock } from "../../clock/index.ts";
import type { Logger } from "./logger.ts";
import { errorFields } from "./redact.ts";

export const securityEventKinds = [
  "auth_failed",
  "rate_limited",
  "signature_failed",
  "webhook_refused",
  "webhook_replayed",
] as const;
export type SecurityEventKind = (typeof securityEventKinds)[number];

export interface SecurityEvent {
  /** Recorded as the CloudEvent type `security.<kind>`. */
  kind: SecurityEventKind;
  /** What it is about, for the activity log's subject filter: `ip:203.0.113.9`, `sub:alice`, `counter/a`. */
  subject: string;
  /**
   * A reason, a route, a client address: never a credential, a signature or a body. A `requestId` here is the
   * logged line's `request_id`.
   */
  data: Record<string, unknown>;
}

/** Reports one event: returns at once and never throws. */
export type SecurityEventSink = (event: SecurityEvent) => void;

export interface SecurityEventsOptions {
  /** Writes one event (to the activity log). May be slow or fail: it runs after the request moved on. */
  record?: (event: SecurityEvent) => Promise<unknown> | unknown;
  /** At most this many events of one kind are recorded per second; the others are only counted. Default 10. */
  perSecond?: number;
  /** Events arriving while this many recordings are still running are dropped too. Default 32. */
  maxInFlight?: number;
  /** Each recorded event is also logged at info; failures to record at warn, at most every 10 s. */
  logger?: Logger;
  clock?: Clock;
}

export type SecurityEventCounts = Record<SecurityEventKind, number>;

export interface SecurityEventStats {
  /** Accepted within the rate and handed to `record`. */
  accepted: SecurityEventCounts;
  /** Over the rate (or too many in flight): counted, not recorded. */
  dropped: SecurityEventCounts;
  /** `record` threw or rejected. */
  failed: SecurityEventCounts;
}

export interface SecurityEvents {
  emit: SecurityEventSink;
  stats(): SecurityEventStats;
  /** Resolves once the recordings started so far have finished (tests, shutdown). */
  settled(): Promise<void>;
}

const zeroCounts = (): SecurityEventCounts =>
  Object.fromEntries(securityEventKinds.map((kind) => [kind, 0])) as SecurityEventCounts;
const failureReportEveryMs = 10_000;

/**
 * Bounds what an attacker can make the node write: a fixed one-second window per kind. The next event recorded
 * after a drop carries `droppedBefore` (how many of its kind were dropped since the last one recorded), so the
 * log shows a flood without holding it.
 */
export function boundedSecurityEvents(options: SecurityEventsOptions = {}): SecurityEvents {
  const { record, logger, perSecond = 10, maxInFlight = 32, clock = systemClock } = options;
  const stats: SecurityEventStats = { accepted: zeroCounts(), dropped: zeroCounts(), failed: zeroCounts() };
  const windows = new Map<SecurityEventKind, { second: number; count: number; droppedSince: number }>();
  const inFlight = new Set<Promise<void>>();
  let lastFailureReport = Number.NEGATIVE_INFINITY;

  const failed = (event: SecurityEvent, error: unknown) => {
    stats.failed[event.kind] += 1;
    const now = clock.monotonic();
    if (now - lastFailureReport < failureReportEveryMs) return;
    lastFailureReport = now;
    logger?.warn("security event not recorded", { kind: event.kind, error: errorFields(error) });
  };

  const emit: SecurityEventSink = (event) => {
    try {
      const second = Math.floor(clock.now() / 1000);
      let window = windows.get(event.kind);
      if (!window) {
        window = { second, count: 0, droppedSince: 0 };
        windows.set(event.kind, window);
      }
      if (window.second !== second) {
        window.second = second;
        window.count = 0;
      }
      if (window.count >= perSecond || inFlight.size >= maxInFlight) {
        stats.dropped[event.kind] += 1;
        window.droppedSince += 1;
        return;
      }
      window.count += 1;
      stats.accepted[event.kind] += 1;
      const accepted =
        window.droppedSince > 0
          ? { ...event, data: { ...event.data, droppedBefore: window.droppedSince } }
          : event;
      window.droppedSince = 0;
      const { requestId, ...fields } = accepted.data;
      logger?.info(`security.${event.kind}`, { request_id: requestId, subject: accepted.subject, ...fields });
      if (!record) return;
      // A microtask later: the request that reported it does not wait for, nor see, the write.
      const running = Promise.resolve()
        .then(() => record(accepted))
        .then(
          () => undefined,
          (error: unknown) => failed(accepted, error),
        );
      inFlight.add(running);
      void running.finally(() => inFlight.delete(running));
    } catch {
      // An event that cannot even be counted in is a failed one; the caller still never sees it.
      stats.failed[event.kind] += 1;
    }
  };

  return {
    emit,
    stats: () => ({
      accepted: { ...stats.accepted },
      dropped: { ...stats.dropped },
      failed: { ...stats.failed },
    }),
    settled: async () => {
      await Promise.allSettled([...inFlight]);
    },
  };
}
