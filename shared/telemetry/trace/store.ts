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

/**
 * One row per trace per written batch: a batch's spans of the same trace are one JSON array, so a request's spans
 * (its SERVER span and its turns end within one flush) cost one insert and one index entry, not one each. `seq` is
 * the running count of spans written through the row, so the bound is a range delete on the primary key.
 */
const schemaVersion = 2;
const schema = `
CREATE TABLE IF NOT EXISTS trace_rows (
  seq INTEGER PRIMARY KEY,
  trace_key INTEGER NOT NULL,
  trace_id TEXT NOT NULL,
  span_count INTEGER NOT NULL,
  error_count INTEGER NOT NULL,
  start_ms REAL NOT NULL,
  end_ms REAL NOT NULL,
  root_name TEXT,
  first_name TEXT NOT NULL,
  spans TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_rows_by_trace ON trace_rows (trace_key);
`;

interface TraceGroup {
  traceId: string;
  spans: StoredSpan[];
}

/** Bounded by span count: each write evicts the oldest spans past `maxSpans` (a whole trace may lose its head). */
export class TraceStore {
  private readonly maxSpans: number;
  private readonly insert;
  private readonly evict;
  private readonly oldest;
  private readonly rewrite;
  /** Spans ever written (the newest row's `seq`). */
  private written: number;

  constructor(
    private readonly db: TraceDb,
    options: TraceStoreOptions = {},
  ) {
    this.maxSpans = Math.max(1, options.maxSpans ?? 20_000);
    // A store from an older layout is dropped: it holds recent diagnostics only, never anything to migrate.
    const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
    if (version !== schemaVersion) {
      db.exec(`DROP TABLE IF EXISTS trace_spans; DROP TABLE IF EXISTS trace_rows;`);
      db.exec(`PRAGMA user_version = ${schemaVersion}`);
    }
    db.exec(schema);
    this.written = Number(db.prepare(`SELECT max(seq) AS seq FROM trace_rows`).get()?.seq ?? 0);
    this.insert = db.prepare(
      `INSERT INTO trace_rows (seq, trace_key, trace_id, span_count, error_count, start_ms, end_ms, root_name,
       first_name, spans) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.evict = db.prepare(`DELETE FROM trace_rows WHERE seq <= ?`);
    this.oldest = db.prepare(`SELECT seq, span_count, spans FROM trace_rows ORDER BY seq LIMIT 1`);
    this.rewrite = db.prepare(
      `UPDATE trace_rows SET span_count = ?, error_count = ?, start_ms = ?, end_ms = ?, root_name = ?, first_name = ?,
       spans = ? WHERE seq = ?`,
    );
  }

  /** Writes a batch in one transaction (one row per trace), then evicts past the bound. */
  write(spans: readonly StoredSpan[]): void {
    if (spans.length === 0) return;
    const groups = new Map<string, TraceGroup>();
    for (const span of spans) {
      const group = groups.get(span.traceId);
      if (group) group.spans.push(span);
      else groups.set(span.traceId, { traceId: span.traceId, spans: [span] });
    }
    this.db.transaction(() => {
      for (const group of groups.values()) {
        this.written += group.spans.length;
        const row = summarize(group.spans);
        this.insert.run(
          this.written,
          traceKey(group.traceId),
          group.traceId,
          group.spans.length,
          row.errors,
          row.startMs,
          row.endMs,
          row.rootName,
          row.firstName,
          JSON.stringify(group.spans),
        );
      }
      const bound = this.written - this.maxSpans;
      if (bound <= 0) return;
      this.evict.run(bound);
      // The oldest row left may still hold spans past the bound: keep only its newest ones.
      const oldest = this.oldest.get();
      if (!oldest) return;
      const seq = Number(oldest.seq);
      const excess = bound - (seq - Number(oldest.span_count));
      if (excess <= 0) return;
      const kept = (JSON.parse(String(oldest.spans)) as StoredSpan[]).slice(excess);
      const row = summarize(kept);
      this.rewrite.run(
        kept.length,
        row.errors,
        row.startMs,
        row.endMs,
        row.rootName,
        row.firstName,
        JSON.stringify(kept),
        seq,
      );
    });
  }

  /** The most recent traces (by their latest write), newest first. */
  recentTraces(limit = 50): TraceSummary[] {
    const rows = this.db
      .prepare(
        `SELECT trace_id, sum(span_count) AS spans, sum(error_count) AS errors, min(start_ms) AS start,
                max(end_ms) AS finish, max(seq) AS last
         FROM trace_rows GROUP BY trace_id ORDER BY last DESC LIMIT ?`,
      )
      .all(Math.max(1, Math.min(limit, 1000)));
    const rootOf = this.db.prepare(
      `SELECT coalesce(root_name, first_name) AS name FROM trace_rows WHERE trace_key = ? AND trace_id = ?
       ORDER BY (root_name IS NULL), start_ms LIMIT 1`,
    );
    return rows.map((row) => {
      const start = Number(row.start);
      const traceId = String(row.trace_id);
      return {
        traceId,
        rootName: String(rootOf.get(traceKey(traceId), traceId)?.name ?? ""),
        startMs: start,
        durationMs: Number(row.finish) - start,
        spanCount: Number(row.spans),
        errorCount: Number(row.errors),
      };
    });
  }

  /** Every stored span of one trace, by start time: the waterfall. */
  trace(traceId: string): StoredSpan[] {
    const spans = this.db
      .prepare(`SELECT spans FROM trace_rows WHERE trace_key = ? AND trace_id = ? ORDER BY seq`)
      .all(traceKey(traceId), traceId)
      .flatMap((row) => JSON.parse(String(row.spans)) as StoredSpan[]);
    // Stable: spans that start together keep the order they were written in.
    return spans.sort((a, b) => a.startMs - b.startMs);
  }

  /** Spans stored now. */
  count(): number {
    return Number(this.db.prepare(`SELECT coalesce(sum(span_count), 0) AS n FROM trace_rows`).get()?.n ?? 0);
  }

  close(): void {
    this.db.close();
  }
}

/**
 * The index key of a trace: its first 52 bits as an integer. An integer index is a quarter of the size of one on the
 * 32-character id, so a batch of random trace ids dirties fewer index pages. Collisions are resolved by `trace_id`.
 */
function traceKey(traceId: string): number {
  const key = Number.parseInt(traceId.slice(0, 13), 16);
  return Number.isFinite(key) ? key : 0;
}

/**
 * A row's columns for the console's list: errors, time range, the root span's name, and the name of the row's
 * earliest top span (one whose parent is not in the row: a caller's child, or a span whose parent ends later).
 */
function summarize(spans: readonly StoredSpan[]) {
  let errors = 0;
  let startMs = Number.POSITIVE_INFINITY;
  let endMs = Number.NEGATIVE_INFINITY;
  let rootName: string | null = null;
  let firstName = "";
  let firstStart = Number.POSITIVE_INFINITY;
  const ids = spans.length > 1 ? new Set(spans.map((span) => span.spanId)) : undefined;
  for (const span of spans) {
    if (span.status === "ERROR") errors++;
    startMs = Math.min(startMs, span.startMs);
    endMs = Math.max(endMs, span.startMs + span.durationMs);
    if (span.parentSpanId === undefined) {
      rootName ??= span.name;
    } else if (ids?.has(span.parentSpanId)) continue;
    if (span.startMs < firstStart) {
      firstStart = span.startMs;
      firstName = span.name;
    }
  }
  return { errors, startMs, endMs, rootName, firstName };
}
