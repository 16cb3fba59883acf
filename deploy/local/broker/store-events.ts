// Event log store: what happened to each message (newest first, with a cursor), and housekeeping.
//
// Writing the log is most of what a delivery costs the database, so a message delivered at the first attempt
// costs one row, not three. Its CREATED and ACTIVE events are read off its qstash_messages row while it waits
// and while it is delivered (`logged`, `active_at`), and the row that logs how the attempt ended carries
// them (`created_time`, `created_due`, `active_time`). Listing expands them again. A row carries an earlier
// event only if it is at most FOLD_WINDOW_MS older than the row; older ones get rows of their own, so that a
// page of events newest first reads a bounded range of rows (see listEvents).
import type postgres from "postgres";
import type { Sql } from "./db.ts";
import type { EventInsert, EventRow, EventState, MessageRow } from "./types.ts";

/** How much older than its row an event carried by the row may be. */
export const FOLD_WINDOW_MS = 10_000;
/** Sort keys of events read off qstash_messages rows come after those of logged events of the same ms. */
const LIVE_KEY_BASE = 2 ** 52;

/** What the log needs of a message: its row, as claimed or as deleted. */
export type LoggedMessage = Pick<
  MessageRow,
  "id" | "url" | "queue_name" | "created_at" | "due_at" | "logged" | "active_at"
>;

/** An event to log now, at the end of an attempt or when a message leaves. */
export interface NewEvent {
  state: EventState;
  response_status?: number | null;
  error?: string | null;
  next_delivery_time?: number | null;
}

/**
 * The rows that log `events` (in this order) for a message at `now`. The first one also carries the message's
 * CREATED event if it is not logged yet, and the ACTIVE event of the attempt under way, when they are recent
 * enough; otherwise those get rows of their own, with their own times.
 */
export function eventRows(message: LoggedMessage, events: NewEvent[], now: number): EventInsert[] {
  const base = {
    message_id: message.id,
    url: message.url,
    queue_name: message.queue_name,
    response_status: null,
    error: null,
    next_delivery_time: null,
    created_time: null,
    created_due: null,
    active_time: null,
  };
  const carried = (time: number) => time <= now && now - time <= FOLD_WINDOW_MS;
  const rows: EventInsert[] = [];
  const first: Pick<EventInsert, "created_time" | "created_due" | "active_time"> = {
    created_time: null,
    created_due: null,
    active_time: null,
  };
  if (!message.logged) {
    if (carried(message.created_at)) {
      first.created_time = message.created_at;
      first.created_due = message.due_at;
    } else {
      rows.push({
        ...base,
        time: message.created_at,
        state: "CREATED",
        next_delivery_time: message.due_at,
      });
    }
  }
  if (message.active_at !== null) {
    if (carried(message.active_at)) first.active_time = message.active_at;
    else rows.push({ ...base, time: message.active_at, state: "ACTIVE" });
  }
  events.forEach((event, n) => {
    rows.push({
      ...base,
      ...(n === 0 ? first : {}),
      time: now,
      state: event.state,
      response_status: event.response_status ?? null,
      error: event.error ?? null,
      next_delivery_time: event.next_delivery_time ?? null,
    });
  });
  return rows;
}

/**
 * `INSERT INTO qstash_events` of `rows`, in order; with `onlyFor`, only those of messages whose id is in that
 * CTE's `id` column (the rows a statement actually changed: a message cancelled meanwhile logs nothing).
 */
export function insertEvents(sql: Sql, rows: EventInsert[], onlyFor?: string) {
  const numbered = rows.map((row, n) => ({ n, ...row })) as unknown as postgres.JSONValue;
  const filter = onlyFor ? sql`WHERE e.message_id IN (SELECT id FROM ${sql(onlyFor)})` : sql``;
  return sql`
    INSERT INTO qstash_events (time, message_id, state, url, queue_name, response_status, error,
      next_delivery_time, created_time, created_due, active_time)
    SELECT e.time, e.message_id, e.state, e.url, e.queue_name, e.response_status, e.error, e.next_delivery_time,
      e.created_time, e.created_due, e.active_time
    FROM jsonb_to_recordset(${sql.json(numbered)}) AS e(n int, time bigint, message_id text, state text,
      url text, queue_name text, response_status int, error text, next_delivery_time bigint,
      created_time bigint, created_due bigint, active_time bigint)
    ${filter}
    ORDER BY e.n`;
}

/** A position in the log: events are listed by (time, key, sub) descending. */
export interface EventCursor {
  time: number;
  /** The event's row id, or LIVE_KEY_BASE + seq for an event read off a qstash_messages row. */
  key: number;
  /** 0 CREATED carried by a row, 1 ACTIVE carried by a row, 2 the row's own event. */
  sub: number;
}

/**
 * Cursors are `<time>.<sub><key>`: a number to a client that compares it with 0 (as the SDK's doc comment
 * does). A plain integer is a time: the events before it.
 */
export function parseEventCursor(text: string): EventCursor | undefined {
  const full = /^(\d{1,15})\.([0-2])(\d{1,16})$/.exec(text);
  if (full) return { time: Number(full[1]), key: Number(full[3]), sub: Number(full[2]) };
  if (/^\d{1,15}$/.test(text)) return { time: Number(text), key: 0, sub: 0 };
  return undefined;
}

const renderCursor = (c: EventCursor) => `${c.time}.${c.sub}${c.key}`;

export interface EventFilter {
  messageIds?: string[];
  states?: string[];
  urls?: string[];
  queueNames?: string[];
  fromDate?: number;
  toDate?: number;
  /** Events before this position (the previous page's last event). */
  cursor?: EventCursor;
  count: number;
}

interface ListedEvent extends EventRow {
  key: number;
  sub: number;
}

/**
 * One page of events, newest first (by time, then by when they were logged). Two statements: the first finds
 * `lo`, the time of the (count+1)-th newest row whose own event matches, so that at least count+1 events are
 * at or after it; the second expands the rows from `lo` on (a row's events are never newer than the row, nor
 * more than FOLD_WINDOW_MS older), adds the events read off messages still waiting or under way, and sorts.
 */
export async function listEvents(sql: Sql, f: EventFilter): Promise<{ rows: EventRow[]; cursor?: string }> {
  const any = (column: string, values: string[] | undefined) =>
    values ? sql`AND ${sql(column)} IN ${sql(values)}` : sql``;
  const rowFilter = sql`${any("message_id", f.messageIds)} ${any("url", f.urls)} ${any("queue_name", f.queueNames)}`;
  const liveFilter = sql`${any("id", f.messageIds)} ${any("url", f.urls)} ${any("queue_name", f.queueNames)}`;
  const c = f.cursor;
  const hi = Math.min(f.toDate ?? Number.POSITIVE_INFINITY, c?.time ?? Number.POSITIVE_INFINITY);
  const finiteHi = Number.isFinite(hi) ? hi : undefined;
  const upTo = (column: string) => (finiteHi === undefined ? sql`` : sql`AND ${sql(column)} <= ${finiteHi}`);
  const from = (column: string) =>
    f.fromDate === undefined ? sql`` : sql`AND ${sql(column)} >= ${f.fromDate}`;
  const before = c ? sql`AND (t, k, sub) < (${c.time}::bigint, ${c.key}::bigint, ${c.sub}::int)` : sql``;
  // Rows with an event of a wanted state: their own, or one they carry. A rare state is read by its index
  // (qstash_events_state); CREATED and ACTIVE, carried by most rows, walking the log by time.
  const carries = (state: EventState) => f.states?.includes(state) ?? false;
  const rowState = f.states
    ? sql`AND (state IN ${sql(f.states)} ${carries("CREATED") ? sql`OR created_time IS NOT NULL` : sql``}
        ${carries("ACTIVE") ? sql`OR active_time IS NOT NULL` : sql``})`
    : sql``;
  // A carried event is at most FOLD_WINDOW_MS older than its row, so count+1 events are from the nth row's
  // time less that on.
  const carriedBack = carries("CREATED") || carries("ACTIVE") ? FOLD_WINDOW_MS : 0;

  const [nth] = await sql`
    SELECT time FROM qstash_events
    WHERE true ${rowFilter} ${rowState} ${upTo("time")} ${from("time")}
      ${c ? sql`AND (time, id, 2) < (${c.time}::bigint, ${c.key}::bigint, ${c.sub}::int)` : sql``}
    ORDER BY time DESC, id DESC OFFSET ${f.count} LIMIT 1`;
  const lo = nth ? Math.max((nth.time as number) - carriedBack, f.fromDate ?? 0) : f.fromDate;
  const rowsFrom = lo === undefined ? sql`` : sql`AND time >= ${lo}`;
  const rowsUpTo = finiteHi === undefined ? sql`` : sql`AND time <= ${finiteHi + FOLD_WINDOW_MS}`;

  const listed = await sql<ListedEvent[]>`
    WITH r AS (
      SELECT * FROM qstash_events WHERE true ${rowFilter} ${rowState} ${rowsFrom} ${rowsUpTo}
    ), ev AS (
      SELECT time AS t, id AS k, 2 AS sub, state, message_id, url, queue_name, response_status, error,
        next_delivery_time
      FROM r
      UNION ALL
      SELECT active_time, id, 1, 'ACTIVE', message_id, url, queue_name, NULL::int, NULL::text, NULL::bigint
      FROM r WHERE active_time IS NOT NULL
      UNION ALL
      SELECT created_time, id, 0, 'CREATED', message_id, url, queue_name, NULL::int, NULL::text, created_due
      FROM r WHERE created_time IS NOT NULL
      UNION ALL
      SELECT created_at, ${LIVE_KEY_BASE}::bigint + seq, 0, 'CREATED', id, url, queue_name, NULL::int,
        NULL::text, due_at
      FROM qstash_messages WHERE NOT logged ${liveFilter}
      UNION ALL
      SELECT active_at, ${LIVE_KEY_BASE}::bigint + seq, 1, 'ACTIVE', id, url, queue_name, NULL::int, NULL::text,
        NULL::bigint
      FROM qstash_messages WHERE state = 'active' AND active_at IS NOT NULL ${liveFilter}
    )
    SELECT t AS time, k AS key, sub, state, message_id, url, queue_name, response_status, error, next_delivery_time
    FROM ev
    WHERE true ${lo === undefined ? sql`` : sql`AND t >= ${lo}`} ${upTo("t")} ${from("t")} ${before}
      ${f.states ? sql`AND state IN ${sql(f.states)}` : sql``}
    ORDER BY t DESC, k DESC, sub DESC
    LIMIT ${f.count + 1}`;
  const page = listed.slice(0, f.count);
  const last = page.at(-1);
  const rows = page.map(({ key: _key, sub: _sub, ...event }) => event);
  return listed.length > f.count && last
    ? { rows, cursor: renderCursor({ time: last.time, key: last.key, sub: last.sub }) }
    : { rows };
}

/** Dead letters deleted per statement: each carries its message's and its last answer's bodies (up to 1 MiB). */
const DLQ_PRUNE_BATCH = 500;

/**
 * Forgets expired deduplication ids, events older than their retention and dead letters older than theirs; returns
 * how many dead letters went. Events go oldest first, 10,000 per statement (index qstash_events_time): a log left by
 * a shorter retention or a long stop may hold millions, and on PGlite one statement holds the only connection. Dead
 * letters likewise, by the time they failed (index qstash_dlq_failed), in smaller batches.
 */
export async function housekeeping(
  sql: Sql,
  retention: { eventsMs: number; deadLettersMs: number },
): Promise<{ deadLetters: number }> {
  const now = Date.now();
  await sql`DELETE FROM qstash_dedup WHERE expires_at < ${now}`;
  for (;;) {
    const gone = await sql`
      DELETE FROM qstash_events WHERE id IN (
        SELECT id FROM qstash_events WHERE time < ${now - retention.eventsMs} ORDER BY time, id LIMIT 10000)
      RETURNING 1`;
    if (gone.length < 10_000) break;
  }
  let deadLetters = 0;
  for (;;) {
    const gone = await sql`
      DELETE FROM qstash_dlq WHERE dlq_id IN (
        SELECT dlq_id FROM qstash_dlq WHERE failed_at < ${now - retention.deadLettersMs}
        ORDER BY failed_at LIMIT ${DLQ_PRUNE_BATCH})
      RETURNING 1`;
    deadLetters += gone.length;
    if (gone.length < DLQ_PRUNE_BATCH) return { deadLetters };
  }
}
