// Message store: durable inserts with deduplication, claiming due work, reading and cancelling messages.
import type postgres from "postgres";
import { relaxedCommit, type Sql } from "./db.ts";
import { eventRows, insertEvents, type LoggedMessage } from "./store-events.ts";
import type { MessageRow, NewMessage } from "./types.ts";

export interface Accepted {
  messageId: string;
  url: string;
  deduplicated: boolean;
}

/** Rows travel as one jsonb parameter, expanded with jsonb_to_recordset: cheaper than a parameter per cell. */
const rowsParam = (rows: unknown[]) => rows as unknown as postgres.JSONValue;

/**
 * Stores messages (with any new queues) in one statement and returns, for each input, the id to report: its
 * own, or that of the earlier message with the same deduplication key. Messages are inserted in input order,
 * so `seq` (the FIFO order of a queue) follows it. Their CREATED events are read off their rows until
 * something else is logged for them (store-events.ts). Those whose ids are in `start` (due, outside queues:
 * the dispatcher has slots for them) are stored as claimed already, active with their first attempt counted,
 * and returned in `started` for the dispatcher to deliver: one row version and one statement fewer.
 */
export async function insertMessages(
  sql: Sql,
  messages: NewMessage[],
  dedupWindowMs: number,
  start: ReadonlySet<string> = new Set(),
): Promise<{ accepted: Accepted[]; started: MessageRow[] }> {
  const now = Date.now();
  // Only the first message of a key claims it (ON CONFLICT DO UPDATE cannot touch a row twice); the others
  // with that key are duplicates of it.
  const claiming = new Set<string>();
  const rows = messages.map((m, n) => {
    const claims = m.dedupKey !== null && !claiming.has(m.dedupKey);
    if (claims) claiming.add(m.dedupKey as string);
    return {
      n,
      id: m.id,
      url: m.url,
      method: m.method,
      headers: m.headers,
      body: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString("base64"),
      queue_name: m.queueName,
      max_retries: m.maxRetries,
      timeout_ms: m.timeoutMs,
      due_at: m.dueAt,
      not_before: m.notBefore,
      created_at: m.createdAt,
      caller_ip: m.callerIp,
      dedup_key: m.dedupKey,
      claims,
      start: start.has(m.id),
    };
  });
  const won = await sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${sql.json(rowsParam(rows))}) AS r(n int, id text, url text, method text,
        headers jsonb, body text, queue_name text, max_retries int, timeout_ms int, due_at bigint, not_before bigint,
        created_at bigint, caller_ip text, dedup_key text, claims boolean, start boolean)
    ), claimed AS (
      INSERT INTO qstash_dedup (key, message_id, expires_at)
      SELECT dedup_key, id, ${now + dedupWindowMs} FROM input WHERE claims
      ON CONFLICT (key) DO UPDATE SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at
        WHERE qstash_dedup.expires_at < ${now}
      RETURNING key, message_id
    ), inserted AS (
      INSERT INTO qstash_messages (id, url, method, headers, body, queue_name, max_retries, timeout_ms, due_at,
        not_before, created_at, caller_ip, state, attempts, active_at)
      SELECT id, url, method, headers, decode(body, 'base64'), queue_name, max_retries, timeout_ms, due_at,
        not_before, created_at, caller_ip, CASE WHEN start THEN 'active' ELSE 'pending' END,
        CASE WHEN start THEN 1 ELSE 0 END, CASE WHEN start THEN ${now}::bigint END
      FROM input WHERE dedup_key IS NULL OR id IN (SELECT message_id FROM claimed)
      ORDER BY n
      RETURNING id, seq, state, queue_name
    ), queues AS (
      INSERT INTO qstash_queues (name, parallelism, created_at, updated_at)
      SELECT DISTINCT queue_name, 1, ${now}::bigint, ${now}::bigint FROM inserted WHERE queue_name IS NOT NULL
      ON CONFLICT (name) DO NOTHING
    )
    SELECT key, message_id, NULL::bigint AS seq FROM claimed
    UNION ALL
    SELECT NULL, id, seq FROM inserted WHERE state = 'active'`;
  const owner = new Map<string, string>(); // dedup key -> message id that stays
  const startedSeq = new Map<string, number>();
  for (const row of won) {
    if (row.key === null) startedSeq.set(row.message_id as string, row.seq as number);
    else owner.set(row.key as string, row.message_id as string);
  }
  const lost = [...claiming].filter((key) => !owner.has(key));
  if (lost.length > 0) {
    const existing = await sql`SELECT key, message_id FROM qstash_dedup WHERE key = ANY(${lost}::text[])`;
    for (const row of existing) owner.set(row.key as string, row.message_id as string);
  }
  const accepted = messages.map((m) => {
    const id = m.dedupKey ? (owner.get(m.dedupKey) ?? m.id) : m.id;
    return { messageId: id, url: m.url, deduplicated: id !== m.id };
  });
  const started = messages.flatMap((m): MessageRow[] => {
    const seq = startedSeq.get(m.id);
    if (seq === undefined) return [];
    return [
      {
        id: m.id,
        seq,
        url: m.url,
        method: m.method,
        headers: m.headers,
        body: m.body,
        queue_name: m.queueName,
        max_retries: m.maxRetries,
        timeout_ms: m.timeoutMs,
        due_at: m.dueAt,
        not_before: m.notBefore,
        created_at: m.createdAt,
        state: "active",
        attempts: 1,
        caller_ip: m.callerIp,
        last_status: null,
        last_error: null,
        active_at: now,
        logged: false,
      },
    ];
  });
  return { accepted, started };
}

/**
 * Claims up to `limit` due messages: messages outside queues by due time, and the head of each unpaused queue
 * (its first `parallelism` undelivered messages, so a queue stays FIFO). Marks them active, counts the
 * attempt and notes when it started (the ACTIVE event, read off the row until the outcome logs it), all in
 * one statement. Its commit does not wait for the disk (`relaxedCommit`): a claim lost in a crash leaves the
 * message pending, and it is delivered again, as one found active at start is.
 */
export async function claimDue(sql: Sql, limit: number, now: number): Promise<MessageRow[]> {
  const rows = await sql<Array<MessageRow & { relaxed_commit?: string }>>`
    WITH free AS (
      SELECT id, due_at, seq FROM qstash_messages
      WHERE state = 'pending' AND queue_name IS NULL AND due_at <= ${now}
      ORDER BY due_at, seq LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), heads AS (
      SELECT id, due_at, seq FROM qstash_messages WHERE id IN (
        SELECT h.id FROM qstash_queues q CROSS JOIN LATERAL (
          SELECT id, state, due_at FROM qstash_messages m
          WHERE m.queue_name = q.name ORDER BY m.seq LIMIT q.parallelism
        ) h
        WHERE NOT q.paused AND h.state = 'pending' AND h.due_at <= ${now}
      )
      -- Evaluated once: without queues nothing below runs, whatever plan the statistics of the day gave it.
      AND EXISTS (SELECT 1 FROM qstash_queues WHERE NOT paused)
      ORDER BY seq LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), picked AS (
      SELECT id FROM (SELECT * FROM free UNION ALL SELECT * FROM heads) u ORDER BY due_at, seq LIMIT ${limit}
    ), claimed AS (
      UPDATE qstash_messages m SET state = 'active', attempts = m.attempts + 1, active_at = ${now}
      WHERE m.id = ANY (ARRAY(SELECT id FROM picked))
      RETURNING m.*, ${relaxedCommit(sql)} AS relaxed_commit
    )
    SELECT * FROM claimed ORDER BY seq`;
  for (const row of rows) delete row.relaxed_commit;
  return rows;
}

/** When the earliest claimable message falls due (ms since epoch), or null when there is none. */
export async function nextDueAt(sql: Sql): Promise<number | null> {
  const [row] = await sql`
    SELECT least(
      (SELECT min(due_at) FROM qstash_messages WHERE state = 'pending' AND queue_name IS NULL),
      (SELECT min(h.due_at) FROM qstash_queues q CROSS JOIN LATERAL (
        SELECT state, due_at FROM qstash_messages m WHERE m.queue_name = q.name ORDER BY m.seq LIMIT q.parallelism
      ) h WHERE NOT q.paused AND h.state = 'pending')
    ) AS due`;
  return (row?.due as number | null) ?? null;
}

export async function getMessage(sql: Sql, id: string): Promise<MessageRow | undefined> {
  const [row] = await sql<MessageRow[]>`SELECT * FROM qstash_messages WHERE id = ${id}`;
  return row;
}

export interface CancelFilter {
  messageIds?: string[];
  urls?: string[];
  queueNames?: string[];
  callerIps?: string[];
  /** Created at or after (ms since epoch). */
  fromDate?: number;
  /** Created at or before (ms since epoch). */
  toDate?: number;
}

/**
 * Cancels messages not yet delivered (an attempt already under way still completes, but is not retried).
 * Filters combine with AND; no filter at all cancels every message (the route decides when that is asked for).
 */
export async function cancelMessages(sql: Sql, filter: CancelFilter): Promise<number> {
  const parts = [
    filter.messageIds ? sql`id IN ${sql(filter.messageIds)}` : null,
    filter.urls ? sql`url IN ${sql(filter.urls)}` : null,
    filter.queueNames ? sql`queue_name IN ${sql(filter.queueNames)}` : null,
    filter.callerIps ? sql`caller_ip IN ${sql(filter.callerIps)}` : null,
    filter.fromDate !== undefined ? sql`created_at >= ${filter.fromDate}` : null,
    filter.toDate !== undefined ? sql`created_at <= ${filter.toDate}` : null,
  ].filter((p) => p !== null);
  const where = parts.reduce((acc, part) => sql`${acc} AND ${part}`, sql`true`);
  return await sql.begin((tx) => cancelWhere(tx as unknown as Sql, where));
}

/** Deletes the messages that `where` selects and logs them CANCELED; run it in a transaction. */
export async function cancelWhere(tx: Sql, where: postgres.PendingQuery<postgres.Row[]>): Promise<number> {
  const now = Date.now();
  const gone = await tx<LoggedMessage[]>`
    DELETE FROM qstash_messages WHERE ${where}
    RETURNING id, url, queue_name, created_at, due_at, logged, active_at`;
  if (gone.length > 0)
    await insertEvents(
      tx,
      gone.flatMap((m) => eventRows(m, [{ state: "CANCELED" }], now)),
    );
  return gone.length;
}
