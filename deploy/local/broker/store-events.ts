// Event log store: what happened to each message (newest first, with a cursor), and housekeeping.
import type { Sql } from "./db.ts";
import type { EventRow } from "./types.ts";

export interface EventFilter {
  messageIds?: string[];
  states?: string[];
  urls?: string[];
  queueNames?: string[];
  fromDate?: number;
  toDate?: number;
  /** Events older than this cursor (the previous page's last id). */
  cursor?: number;
  count: number;
}

export interface StoredEvent extends EventRow {
  id: number;
}

export async function listEvents(
  sql: Sql,
  f: EventFilter,
): Promise<{ rows: StoredEvent[]; cursor?: number }> {
  const parts = [
    f.messageIds ? sql`message_id IN ${sql(f.messageIds)}` : null,
    f.states ? sql`state IN ${sql(f.states)}` : null,
    f.urls ? sql`url IN ${sql(f.urls)}` : null,
    f.queueNames ? sql`queue_name IN ${sql(f.queueNames)}` : null,
    f.fromDate !== undefined ? sql`time >= ${f.fromDate}` : null,
    f.toDate !== undefined ? sql`time <= ${f.toDate}` : null,
    f.cursor !== undefined ? sql`id < ${f.cursor}` : null,
  ].filter((p) => p !== null);
  const where = parts.reduce((acc, part) => sql`${acc} AND ${part}`, sql`true`);
  const rows = await sql<StoredEvent[]>`
    SELECT * FROM qstash_events WHERE ${where} ORDER BY id DESC LIMIT ${f.count + 1}`;
  const page = rows.slice(0, f.count);
  const last = page.at(-1);
  return rows.length > f.count && last ? { rows: page, cursor: last.id } : { rows: page };
}

/** Forgets expired deduplication ids and events older than the retention. */
export async function housekeeping(sql: Sql, eventRetentionMs: number): Promise<void> {
  const now = Date.now();
  await sql`DELETE FROM qstash_dedup WHERE expires_at < ${now}`;
  await sql`DELETE FROM qstash_events WHERE time < ${now - eventRetentionMs}`;
}
