// Dead-letter queue store: list with filters and a cursor, delete, and retry (republish as a new message).
import type { Sql } from "./db.ts";
import type { DlqRow } from "./types.ts";

export interface DlqFilter {
  dlqIds?: string[];
  messageIds?: string[];
  urls?: string[];
  queueNames?: string[];
  responseStatuses?: number[];
  callerIps?: string[];
  fromDate?: number;
  toDate?: number;
  /** Rows after this cursor (the previous page's last seq). */
  cursor?: number;
  count: number;
  latestFirst?: boolean;
}

function where(sql: Sql, f: DlqFilter) {
  const parts = [
    f.dlqIds ? sql`dlq_id IN ${sql(f.dlqIds)}` : null,
    f.messageIds ? sql`message_id IN ${sql(f.messageIds)}` : null,
    f.urls ? sql`url IN ${sql(f.urls)}` : null,
    f.queueNames ? sql`queue_name IN ${sql(f.queueNames)}` : null,
    f.responseStatuses ? sql`response_status IN ${sql(f.responseStatuses)}` : null,
    f.callerIps ? sql`caller_ip IN ${sql(f.callerIps)}` : null,
    f.fromDate !== undefined ? sql`failed_at >= ${f.fromDate}` : null,
    f.toDate !== undefined ? sql`failed_at <= ${f.toDate}` : null,
    f.cursor !== undefined ? (f.latestFirst ? sql`seq < ${f.cursor}` : sql`seq > ${f.cursor}`) : null,
  ].filter((p) => p !== null);
  return parts.reduce((acc, part) => sql`${acc} AND ${part}`, sql`true`);
}

/** One page of DLQ rows, and the cursor of the next page when there may be one. */
export async function listDlq(sql: Sql, f: DlqFilter): Promise<{ rows: DlqRow[]; cursor?: number }> {
  const order = f.latestFirst ? sql`seq DESC` : sql`seq ASC`;
  const rows = await sql<DlqRow[]>`
    SELECT * FROM qstash_dlq WHERE ${where(sql, f)} ORDER BY ${order} LIMIT ${f.count + 1}`;
  const page = rows.slice(0, f.count);
  const last = page.at(-1);
  return rows.length > f.count && last ? { rows: page, cursor: last.seq } : { rows: page };
}

export async function getDlq(sql: Sql, dlqId: string): Promise<DlqRow | undefined> {
  const [row] = await sql<DlqRow[]>`SELECT * FROM qstash_dlq WHERE dlq_id = ${dlqId}`;
  return row;
}

export async function deleteDlq(sql: Sql, f: DlqFilter): Promise<{ deleted: number; cursor?: number }> {
  return await sql.begin(async (tx) => {
    const { rows, cursor } = await listDlq(tx as unknown as Sql, f);
    if (rows.length > 0) await tx`DELETE FROM qstash_dlq WHERE dlq_id IN ${tx(rows.map((r) => r.dlq_id))}`;
    return cursor === undefined ? { deleted: rows.length } : { deleted: rows.length, cursor };
  });
}

/**
 * Retries DLQ messages: each becomes a new message (new id, attempts reset, due now) and leaves the DLQ,
 * in one transaction, so a retried message is delivered once more and not twice.
 */
export async function retryDlq(
  sql: Sql,
  f: DlqFilter,
  newMessageId: () => string,
): Promise<{ messageIds: string[]; cursor?: number }> {
  const now = Date.now();
  return await sql.begin(async (tx) => {
    const { rows, cursor } = await listDlq(tx as unknown as Sql, f);
    const messageIds: string[] = [];
    for (const row of rows) {
      const id = newMessageId();
      messageIds.push(id);
      // Its CREATED event is read off the new row until something else is logged for it (store-events.ts).
      await tx`
        WITH moved AS (
          DELETE FROM qstash_dlq WHERE dlq_id = ${row.dlq_id} RETURNING *
        )
        INSERT INTO qstash_messages (id, url, method, headers, body, queue_name, max_retries, timeout_ms, due_at,
          not_before, created_at, caller_ip)
        SELECT ${id}, url, method, headers, body, queue_name, max_retries, timeout_ms, ${now}, null, ${now}, caller_ip
        FROM moved`;
      if (row.queue_name) {
        await tx`INSERT INTO qstash_queues (name, parallelism, created_at, updated_at)
          VALUES (${row.queue_name}, 1, ${now}, ${now}) ON CONFLICT (name) DO NOTHING`;
      }
    }
    return cursor === undefined ? { messageIds } : { messageIds, cursor };
  });
}
