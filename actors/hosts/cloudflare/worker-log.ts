// A Worker isolate's JSON logger: the node's lines (level, msg, fields, redaction) at the env's LOG_LEVEL, one console call each.
import { createLogger, type Logger, logLevelOf } from "../../../shared/telemetry/log/index.ts";

/** Every env of an isolate carries the same variables, so the first one that names a level sets it for all. */
let isolateLogger: Logger | undefined;

/**
 * The isolate's logger, at `env.LOG_LEVEL` (read leniently: a bad value logs at info here, and the gateway's
 * configuration check refuses it by name). Without an env and before any caller gave one, a logger at info that is
 * not kept, so a later env still sets the level.
 */
export function workerLogger(env?: unknown): Logger {
  if (isolateLogger) return isolateLogger;
  if (env === undefined) return createLogger();
  isolateLogger = createLogger({ level: logLevelOf((env as { LOG_LEVEL?: unknown }).LOG_LEVEL) });
  return isolateLogger;
}
