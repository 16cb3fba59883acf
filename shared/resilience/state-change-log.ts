// One log line per breaker state change, the same on every host: closing at info, anything else at warn.
import type { StateChange } from "./breaker-options.ts";

/** What this needs of a logger (shared/telemetry/log's Logger has it). */
export interface LevelLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** An `onStateChange` that logs `<label> <name>: <from> → <to>`, with the change as fields. */
export function logStateChange(logger: LevelLogger, label = "breaker") {
  return (change: StateChange): void =>
    logger[change.to === "closed" ? "info" : "warn"](
      `${label} ${change.name}: ${change.from} → ${change.to}`,
      {
        breaker: change.name,
        from: change.from,
        to: change.to,
        reason: change.reason,
      },
    );
}
