// The embedded trace store: finished spans in a bounded SQLite table (the node's data dir), queried by the console.
import { type SpanKind, SpanStatusCode } from "@opentelemetry/api";

/** The slice of the local host's SQLite port the store needs (bun:sqlite or node:sqlite behind it). */
export interface TraceDb {
  exec(sql: string): void;
  prepare(sql: string): {
    run(...params: Array<string | number | null>): unknown;
    all(...params: Array<string | number | null>): Array<Record<string, unknown>>;
    get(...params: Array<string | number | null>): Record<string, unknown> | undefined;
  };
  transaction<T>(fn: () => T): T;
  close(): void;
}

export interface StoredLink {
  traceId: string;
  spanId: string;
  attributes?: Record<string, unknown>;
}

/** One finished span, as the console's waterfall needs it. Times in epoch milliseconds (fractional). */
export interface StoredSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: "INTERNAL" | "SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER";
  startMs: number;
  durationMs: number;
  status: "UNSET" | "OK" | "ERROR";
  statusMessage?: string;
  attributes: Record<string, unknown>;
  links: StoredLink[];
  events?: Array<{ name: string; timeMs: number; attributes?: Record<string, unknown> }>;
}

export interface TraceSummary {
  traceId: string;
  /** The root span's name, or the earliest span's when the root is elsewhere (or evicted). */
  rootName: string;
  startMs: number;
  durationMs: number;
  spanCount: number;
  errorCount: number;
}

export interface TraceStoreOptions {
  /** Spans kept; the oldest are evicted past it. Default 20 000. */
  maxSpans?: number;
}

const kinds: StoredSpan["kind"][] = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
export const kindName = (kind: SpanKind): StoredSpan["kind"] => kinds[kind] ?? "INTERNAL";
export const statusName = (code: SpanStatusCode): StoredSpan["status"] =>
  code === SpanStatusCode.ERROR ? "ERROR" : code === SpanStatusCode.OK ? "OK" : "UNSET";

const schema = `
CREATE TABLE IF NOT EXISTS trace_spans (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT,
  name TEXT NOT NULL, kind TEXT NOT NULL, start_ms REAL NOT NULL, duration_ms REAL NOT NULL,
  status TEXT NOT NULL, error INTEGER NOT NULL, span TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_spans_by_trace ON trace_spans (trace_id, start_ms);
`;

/** Bounded by span count: each write evicts the oldest spans past `maxSpans` (a whole trace may lose its head). */
export class TraceStore {
  private readonly maxSpans: number;
  private readonly insert;
  private readonly evict;

  constructor(
    private readonly db: TraceDb,
    options: TraceStoreOptions = {},
  ) {
    this.maxSpans = Math.max(1, options.maxSpans ?? 20_000);
    db.exec(schema);
    this.insert = db.prepare(
      `INSERT INTO trace_spans (trace_id, span_id, parent_span_id, name, kind, start_ms, duration_ms, status, error, span)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.evict = db.prepare(`DELETE FROM trace_spans WHERE seq <= (SELECT max(seq) FROM trace_spans) - ?`);
  }

  /** Writes a batch in one transaction, then evicts past the bound. */
  write(spans: readonly StoredSpan[]): void {
    if (spans.length === 0) return;
    this.db.transaction(() => {
      for (const span of spans) {
        this.insert.run(
          span.traceId,
          span.spanId,
          span.parentSpanId ?? null,
          span.name,
          span.kind,
          span.startMs,
          span.durationMs,
          span.status,
          span.status === "ERROR" ? 1 : 0,
          JSON.stringify(span),
        );
      }
      this.evict.run(this.maxSpans);
    });
  }

  /** The most recent traces (by their latest span start), newest first. */
  recentTraces(limit = 50): TraceSummary[] {
    const rows = this.db
      .prepare(
        `SELECT trace_id, count(*) AS spans, sum(error) AS errors, min(start_ms) AS start,
                max(start_ms + duration_ms) AS finish, max(seq) AS last
         FROM trace_spans GROUP BY trace_id ORDER BY last DESC LIMIT ?`,
      )
      .all(Math.max(1, Math.min(limit, 1000)));
    const rootOf = this.db.prepare(
      `SELECT name FROM trace_spans WHERE trace_id = ? ORDER BY (parent_span_id IS NULL) DESC, start_ms LIMIT 1`,
    );
    return rows.map((row) => {
      const start = Number(row.start);
      return {
        traceId: String(row.trace_id),
        rootName: String(rootOf.get(String(row.trace_id))?.name ?? ""),
        startMs: start,
        durationMs: Number(row.finish) - start,
        spanCount: Number(row.spans),
        errorCount: Number(row.errors),
      };
    });
  }

  /** Every stored span of one trace, by start time: the waterfall. */
  trace(traceId: string): StoredSpan[] {
    return this.db
      .prepare(`SELECT span FROM trace_spans WHERE trace_id = ? ORDER BY start_ms, seq`)
      .all(traceId)
      .map((row) => JSON.parse(String(row.span)) as StoredSpan);
  }

  /** Spans stored now. */
  count(): number {
    return Number(this.db.prepare(`SELECT count(*) AS n FROM trace_spans`).get()?.n ?? 0);
  }

  close(): void {
    this.db.close();
  }
}
