// The structured logger: one redacted JSON line per record, with trace, request, actor and message ids.
import { type Clock, systemClock } from "../../clock/index.ts";
import { type LogLevel, levelRank } from "./levels.ts";
import { redact } from "./redact.ts";
import { consoleSink, type LogSink } from "./sinks.ts";
import { activeTraceIds, type TraceIds } from "./trace.ts";

/** Free fields of a record. `time`, `level` and `msg` are the logger's own; a field of that name is dropped. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  /** Whether a record at `level` would be written: check it before building costly fields. */
  isEnabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose every record carries `fields` too (a request's id, an actor's address). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** The lowest level written (LOG_LEVEL). Default info. */
  level?: LogLevel;
  /** Default the console. */
  sink?: LogSink;
  /** Fields on every record. */
  fields?: LogFields;
  clock?: Clock;
  /** Where trace ids come from. Default the active OpenTelemetry span; bound `trace_id`/`span_id` otherwise. */
  traceIds?: () => TraceIds | undefined;
}

const reserved = new Set(["time", "level", "msg"]);
/** Written right after `msg`, in this order, so every line reads the same way. */
const wellKnown = ["trace_id", "span_id", "request_id", "actor", "message_id"] as const;
const placed = new Set<string>([...reserved, ...wellKnown]);

/** `actor` may be bound as an address object; the line shows it as `type/key`. */
function actorText(actor: unknown): unknown {
  if (typeof actor !== "object" || actor === null) return actor;
  const { type, key } = actor as { type?: unknown; key?: unknown };
  return typeof type === "string" && typeof key === "string" ? `${type}/${key}` : actor;
}

/**
 * What JSON.stringify leaves raw but a reader may take for the end of a line or a terminal's control: U+2028 and
 * U+2029 (line and paragraph separators), and DEL and the C1 controls, NEL (U+0085, a line break to Unicode) and
 * CSI (U+009B) among them. Any client string can hold them; escaped, the line is the same JSON.
 */
const breaksLine = /[\u007f-\u009f\u2028\u2029]/;
const breaksLines = new RegExp(breaksLine.source, "g");
const oneLine = (json: string) =>
  breaksLine.test(json)
    ? json.replace(breaksLines, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)
    : json;

export function createLogger(options: LoggerOptions = {}): Logger {
  return new JsonLogger(
    options.level ?? "info",
    options.sink ?? consoleSink,
    options.fields ?? {},
    options.clock ?? systemClock,
    options.traceIds ?? activeTraceIds,
  );
}

class JsonLogger implements Logger {
  private readonly threshold: number;

  constructor(
    readonly level: LogLevel,
    private readonly sink: LogSink,
    private readonly bound: LogFields,
    private readonly clock: Clock,
    private readonly traceIds: () => TraceIds | undefined,
  ) {
    this.threshold = levelRank[level];
  }

  isEnabled(level: LogLevel): boolean {
    return levelRank[level] >= this.threshold;
  }

  debug(msg: string, fields?: LogFields): void {
    if (levelRank.debug >= this.threshold) this.write("debug", msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    if (levelRank.info >= this.threshold) this.write("info", msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    if (levelRank.warn >= this.threshold) this.write("warn", msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    if (levelRank.error >= this.threshold) this.write("error", msg, fields);
  }

  child(fields: LogFields): Logger {
    return new JsonLogger(this.level, this.sink, { ...this.bound, ...fields }, this.clock, this.traceIds);
  }

  private write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    // Logging must never be why a request fails: a throwing sink or an odd value loses the line, nothing else.
    try {
      const merged = fields ? { ...this.bound, ...fields } : this.bound;
      const record: LogFields = { time: new Date(this.clock.now()).toISOString(), level, msg };
      const active = this.traceIds();
      if (active) {
        record.trace_id = active.trace_id;
        if (active.span_id !== undefined) record.span_id = active.span_id;
      } else {
        if (merged.trace_id !== undefined) record.trace_id = merged.trace_id;
        if (merged.span_id !== undefined) record.span_id = merged.span_id;
      }
      if (merged.request_id !== undefined) record.request_id = merged.request_id;
      if (merged.actor !== undefined) record.actor = actorText(merged.actor);
      if (merged.message_id !== undefined) record.message_id = merged.message_id;
      for (const key in merged) if (!placed.has(key)) record[key] = merged[key];
      this.sink(oneLine(JSON.stringify(redact(record))), level);
    } catch {
      // Dropped: there is nowhere safer to report a failure of the log itself.
    }
  }
}
