// Retention for the security events in the activity log: the only rows an unauthenticated caller can make it write.
import { dueAfter } from "../../../shared/clock/index.ts";
import { securityEventKinds } from "../../../shared/telemetry/log/security-events.ts";
import type { ActivityLog } from "./activity-log.ts";

/** The activity log's types for security events: `security.auth_failed`, … */
export const securityEventTypes: readonly string[] = securityEventKinds.map((kind) => `security.${kind}`);

/**
 * How long a security event stays in the activity log. Anyone can make a node record them (a bad token, a
 * forged delivery, an unsigned inbound webhook), 10 a second per kind at most, so without an end an attack held
 * for weeks made the log grow by about 4 million rows a day, for good. Seven days, as the actors' inbox keeps
 * handled ids: long enough to look into an incident, and it caps what a flood leaves at about 30 million rows
 * per node. Every recorded event is also a JSON log line, which is where a longer history belongs. By age, not by
 * count: a count would let a new flood push the record of an earlier attack out.
 */
export const securityEventRetentionMs = 7 * 86_400_000;

/**
 * Deletes activity-log entries (of `types`, or all) older than `keepMs`, at most once per `everyMs` per process,
 * off the caller's path. Call it as often as you like: on Workers the cron calls it every minute for
 * EDGEWISE_ACTIVITY_RETENTION, where no timer outlives a request. Returns the pruning it started, if it started
 * one (settling once done, failed or not), for a caller that wants to wait. `now` is wall time (the cutoff is
 * compared with stored times); one before the last prune means the wall clock was stepped back, and prunes then,
 * or a clock stepped back a day stopped the pruning for a day.
 */
export function activityPruner(
  log: Pick<ActivityLog, "pruneActivity">,
  options: {
    keepMs: number;
    everyMs?: number;
    types?: readonly string[];
    onError?: (error: unknown) => void;
  },
): (now: number) => Promise<void> | undefined {
  const { everyMs = 3_600_000, keepMs, types } = options;
  let last = Number.NEGATIVE_INFINITY;
  return (now) => {
    if (!dueAfter(now, last, everyMs)) return undefined;
    last = now;
    return log.pruneActivity({ olderThan: now - keepMs, ...(types ? { types } : {}) }).then(
      () => undefined,
      (error: unknown) => options.onError?.(error),
    );
  };
}

/**
 * `activityPruner` for security events only, after `securityEventRetentionMs`. Call it as events are recorded: a
 * node that records none has nothing new to prune. Domain events are not touched (their retention is the
 * operator's EDGEWISE_ACTIVITY_RETENTION).
 */
export function securityEventPruner(
  log: Pick<ActivityLog, "pruneActivity">,
  options: { everyMs?: number; keepMs?: number; onError?: (error: unknown) => void } = {},
): (now: number) => Promise<void> | undefined {
  return activityPruner(log, { keepMs: securityEventRetentionMs, ...options, types: securityEventTypes });
}
