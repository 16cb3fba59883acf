// Logs: a structured JSON logger with redaction and trace ids, its sinks, and bounded security events.
export { type LogLevel, levelRank, logLevelOf, logLevels } from "./levels.ts";
export { createLogger, type LogFields, type Logger, type LoggerOptions } from "./logger.ts";
export { errorFields, isSensitiveKey, maskSecrets, redact, redacted } from "./redact.ts";
export {
  boundedSecurityEvents,
  type SecurityEvent,
  type SecurityEventCounts,
  type SecurityEventKind,
  securityEventKinds,
  type SecurityEventSink,
  type SecurityEvents,
  type SecurityEventsOptions,
  type SecurityEventStats,
} from "./security-events.ts";
export { type CaptureSink, captureSink, consoleSink, type LogSink } from "./sinks.ts";
export { activeTraceIds, type TraceIds, traceIdFromTraceparent } from "./trace.ts";
