// Log levels, lowest first; LOG_LEVEL names the lowest one written.

export const logLevels = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof logLevels)[number];

export const levelRank: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A LOG_LEVEL value from an environment that was not parsed by the config schema (a Worker's env, say). */
export function logLevelOf(value: unknown, fallback: LogLevel = "info"): LogLevel {
  const name = typeof value === "string" ? value.trim().toLowerCase() : "";
  return (logLevels as readonly string[]).includes(name) ? (name as LogLevel) : fallback;
}
