// Message store: durable inserts with deduplication, claiming due work, reading and cancelling messages.
import type postgres from "postgres";
import type { Sql } from "./db.ts";
import type { MessageRow, NewMessage } from "./types.ts";

export interface Accepted {
  messageId: string;
  url: string;
  deduplicated: boolean;
}

/** Rows travel as one jsonb parameter, expanded with jsonb_to_recordset: cheaper than a parameter per cell. */
const rowsParam = (rows: unknown[]) => rows as unknown as postgres.JSONValue;

/**
 * Stores messages in one transaction (with their CREATED events and any new queues) and returns, for each
 * input, the id to report: its own, or that of the earlier message with the same deduplication key.
 * Messages are inserted in input order, so `seq` (the FIFO order of a queue) follows it.
 */
export async function insertMessages(
  sql: Sql,
  messages: NewMessage[],
  dedupWindowMs: number,
): Promise<Accepted[]> {
  const now = Date.now();
  return await sql.begin(async (tx) => {
    const owner = new Map<string, string>(); // dedup key -> message id that stays
    const firstOf = new Map<string, NewMessage>();
    for (const message of messages) {
      if (message.dedupKey && !firstOf.has(message.dedupKey)) firstOf.set(message.dedupKey, message);
    }
    if (firstOf.size > 0) {
      const claims = [...firstOf.values()].map((m) => ({
        key: m.dedupKey,
        id: m.id,
        exp: now + dedupWindowMs,
      }));
      const won = await tx`
        INSERT INTO qstash_dedup (key, message_id, expires_at)
        SELECT key, id, exp FROM jsonb_to_recordset(${tx.json(rowsParam(claims))}) AS c(key text, id text, exp bigint)
        ON CONFLICT (key) DO UPDATE SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at
          WHERE qstash_dedup.expires_at < ${now}
        RETURNING key, message_id`;
      for (const row of won) owner.set(row.key as string, row.message_id as string);
      const lost = [...firstOf.keys()].filter((key) => !owner.has(key));
      if (lost.length > 0) {
        const existing = await tx`SELECT key, message_id FROM qstash_dedup WHERE key IN ${tx(lost)}`;
        for (const row of existing) owner.set(row.key as string, row.message_id as string);
      }
    }
    const fresh = messages.filter((m) => !m.dedupKey || owner.get(m.dedupKey) === m.id);
    if (fresh.length > 0) {
      const rows = fresh.map((m, n) => ({
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
      }));
      await tx`
        WITH inserted AS (
          INSERT INTO qstash_messages (id, url, method, headers, body, queue_name, max_retries, timeout_ms, due_at,
            not_before, created_at, caller_ip)
          SELECT id, url, method, headers, decode(body, 'base64'), queue_name, max_retries, timeout_ms, due_at,
            not_before, created_at, caller_ip
          FROM jsonb_to_recordset(${tx.json(rowsParam(rows))}) AS r(n int, id text, url text, method text,
            headers jsonb, body text, queue_name text, max_retries int, timeout_ms int, due_at bigint,
            not_before bigint, created_at bigint, caller_ip text)
          ORDER BY n
          RETURNING id, url, queue_name, due_at, seq
        )
        INSERT INTO qstash_events (time, message_id, state, url, queue_name, next_delivery_time)
        SELECT ${now}, id, 'CREATED', url, queue_name, due_at FROM inserted ORDER BY seq`;
      const queues = [...new Set(fresh.map((m) => m.queueName).filter((q): q is string => q !== null))];
      if (queues.length > 0) {
        const queueRows = queues.map((name) => ({ name, parallelism: 1, created_at: now, updated_at: now }));
        await tx`INSERT INTO qstash_queues ${tx(queueRows)} ON CONFLICT (name) DO NOTHING`;
      }
    }
    return messages.map((m) => {
      const id = m.dedupKey ? (owner.get(m.dedupKey) ?? m.id) : m.id;
      return { messageId: id, url: m.url, deduplicated: id !== m.id };
    });
  });
}

/**
 * Claims up to `limit` due messages: messages outside queues by due time, and the head of each unpaused queue
 * (its first `parallelism` undelivered messages, so a queue stays FIFO). Marks them active, counts the
 * attempt and logs ACTIVE, all in one statement.
 */
export async function claimDue(sql: Sql, limit: number, now: number): Promise<MessageRow[]> {
  const rows = await sql<MessageRow[]>`
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
      ORDER BY seq LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), picked AS (
      SELECT id FROM (SELECT * FROM free UNION ALL SELECT * FROM heads) u ORDER BY due_at, seq LIMIT ${limit}
    ), claimed AS (
      UPDATE qstash_messages m SET state = 'active', attempts = m.attempts + 1
      WHERE m.id = ANY (ARRAY(SELECT id FROM picked))
      RETURNING m.*
    ), logged AS (
      INSERT INTO qstash_events (time, message_id, state, url, queue_name)
      SELECT ${now}, id, 'ACTIVE', url, queue_name FROM claimed
    )
    SELECT * FROM claimed ORDER BY seq`;
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
}

/**
 * Cancels messages not yet delivered (an attempt already under way still completes, but is not retried).
 * No filter at all cancels every message.
 */
export async function cancelMessages(sql: Sql, filter: CancelFilter): Promise<number> {
  const now = Date.now();
  const byId = filter.messageIds ? sql`id IN ${sql(filter.messageIds)}` : sql`true`;
  const byUrl = filter.urls ? sql`url IN ${sql(filter.urls)}` : sql`true`;
  const byQueue = filter.queueNames ? sql`queue_name IN ${sql(filter.queueNames)}` : sql`true`;
  const rows = await sql`
    WITH gone AS (
      DELETE FROM qstash_messages WHERE ${byId} AND ${byUrl} AND ${byQueue}
      RETURNING id, url, queue_name
    ), logged AS (
      INSERT INTO qstash_events (time, message_id, state, url, queue_name)
      SELECT ${now}, id, 'CANCELED', url, queue_name FROM gone
    )
    SELECT id FROM gone`;
  return rows.length;
}
