// The activity log: a MessageConsumer (`activity/all`) appending every event envelope to Postgres, and its reader.
import type postgres from "postgres";
import * as v from "valibot";
import { type Envelope, parseEnvelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import type { SchemaMarkers } from "../../../shared/postgres/schema-marker.ts";
import type { MessageConsumer } from "../../runtime/consumers.ts";
import { nextMacrotask } from "../../runtime/group-commit.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import { Participants } from "../messages.ts";
import { migrateActivityLog, pruneSetting } from "./activity-table.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { jsonbText } from "./jsonb.ts";
import { type Page, PageLimit } from "./page-limit.ts";

/** GET /v1/activity query parameters. */
export const ListActivityQuery = v.object({
  /** The envelope's `subject`, or an orderId, customerId or sku its data names. */
  subject: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(1024))),
  /**
   * One type exactly (`OrderPlaced`, `security.auth_failed`), or a family ending in `.*` (`admin.*`, `security.*`):
   * every type that starts with what comes before the `*`. No type contains `*`, so the two cannot be confused.
   */
  type: v.optional(
    v.pipe(
      v.string(),
      v.minLength(1),
      v.maxLength(256),
      v.check(
        (type) => !type.includes("*") || /^[^*]+\.\*$/.test(type),
        "is one event type, or a family of them ending in .* (admin.*, security.*)",
      ),
    ),
  ),
  limit: PageLimit,
  cursor: v.optional(v.string()),
});
export type ListActivityQuery = v.InferInput<typeof ListActivityQuery>;

/** A sequence number that fits int8, as every row's does. */
const ActivityCursor = v.strictObject({
  s: v.pipe(
    v.string(),
    v.regex(/^[1-9][0-9]{0,18}$/),
    v.check((s) => BigInt(s) <= 9_223_372_036_854_775_807n),
  ),
});

export interface RecordResult {
  /** The envelope id was already in the log: nothing was written. */
  duplicate: boolean;
  /** The new entry's position; undefined for a duplicate. */
  seq: string | undefined;
}

/** One envelope as the log stores it; the JSON columns as text (NUL and lone surrogates already replaced). */
interface ActivityRow {
  id: string;
  type: string;
  subject: string | null;
  source: string;
  time: string;
  data: string | null;
  envelope: string;
  subjects: string;
}

const positiveLimit = (limit: number) => Math.min(Math.max(Math.trunc(limit) || 1, 1), 1000);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** What the subject filter matches: the envelope's subject, and the orderId, customerId and skus of its data. */
export function subjectsOf(envelope: Envelope): string[] {
  const found = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === "string" && value.length > 0 && value.length <= 1024) found.add(value);
  };
  add(envelope.subject);
  const { data } = envelope;
  if (isRecord(data)) {
    add(data.orderId);
    add(data.customerId);
    add(data.sku);
    if (Array.isArray(data.skus)) for (const sku of data.skus.slice(0, 50)) add(sku);
    if (Array.isArray(data.items)) {
      for (const item of data.items.slice(0, 50)) if (isRecord(item)) add(item.sku);
    }
  }
  return [...found];
}

/** One envelope as the log stores it (validated; `envelope.invalid` otherwise), without its delivery's `target`. */
function activityRow(envelope: Envelope): ActivityRow {
  const { target: _, ...event } = parseEnvelope(envelope);
  return {
    id: event.id,
    type: event.type,
    subject: event.subject ?? null,
    source: event.source,
    time: event.time,
    data: jsonbText(event.data) ?? null,
    envelope: jsonbText(event) ?? "{}",
    subjects: JSON.stringify(subjectsOf(event)),
  };
}

/**
 * Every event, once (UNIQUE(id): a redelivery is `duplicate: true`), plus whatever else is recorded directly with
 * `recordActivity`, e.g. `security.auth_failed`. Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE.
 *
 * Retention: nothing is deleted unless `pruneActivity` is called (by a scheduled job, say); it deletes entries
 * recorded before a time, in short batches, with the trigger let through by a transaction-local setting. A node
 * calls it for security events only (`securityEventPruner`), which anyone can make it write.
 */
export class ActivityLog<Types extends Record<string, unknown> = Record<string, never>>
  implements MessageConsumer
{
  readonly type = Participants.activity;

  /** Takes the caller's pool and never opens one. */
  constructor(private readonly sql: postgres.Sql<Types>) {}

  /** Creates the table if missing; safe on every start and from several nodes at once. */
  migrate(markers?: SchemaMarkers): Promise<void> {
    return migrateActivityLog(this.sql, markers);
  }

  async receive(envelope: Envelope): Promise<TurnOutcome> {
    const result = await this.recordActivity(envelope);
    return { duplicate: result.duplicate, reply: { seq: result.seq } };
  }

  /**
   * Appends one envelope (validated; `envelope.invalid` otherwise). The stored CloudEvent leaves out `target`,
   * which names one delivery of the event, not the event.
   *
   * Envelopes recorded in the same turn of the event loop are written by one INSERT (one commit, so one fsync on
   * a durable store, instead of one each); the saga writes about six per order, most of them concurrently. If that
   * statement fails, each envelope is written on its own, so a bad row fails only its own call.
   */
  async recordActivity(envelope: Envelope): Promise<RecordResult> {
    const row = activityRow(envelope);
    return await new Promise<RecordResult>((resolve, reject) => {
      this.waiting.push({ row, resolve, reject });
      // What else is recorded in this macrotask joins the batch.
      if (this.waiting.length === 1) nextMacrotask(() => void this.flush());
    });
  }

  /**
   * Appends one envelope on `tx`, a transaction of the caller's on the log's database, by the same insert: it is kept
   * if and only if `tx` commits. For a record that must stand or fall with a change made in `tx` (`admin.account_set`
   * with the balance it set); it is not batched with others, whose fate is not `tx`'s.
   */
  async recordActivityIn(tx: postgres.TransactionSql<Types>, envelope: Envelope): Promise<RecordResult> {
    const row = activityRow(envelope);
    const seq = (await this.insertMany([row], tx)).get(row.id);
    return seq === undefined ? { duplicate: true, seq: undefined } : { duplicate: false, seq };
  }

  private waiting: Array<{
    row: ActivityRow;
    resolve: (r: RecordResult) => void;
    reject: (e: unknown) => void;
  }> = [];

  private async flush(): Promise<void> {
    const batch = this.waiting;
    this.waiting = [];
    try {
      this.settle(batch, await this.insertMany(batch.map((entry) => entry.row)));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      // One at a time instead: each call gets its own result or its own error.
      await Promise.all(
        batch.map((entry) =>
          this.insertMany([entry.row]).then((stored) => this.settle([entry], stored), entry.reject),
        ),
      );
    }
  }

  /** The first of two envelopes with the same id in one batch is the one stored; the other is a duplicate. */
  private settle(batch: typeof this.waiting, stored: Map<string, string>): void {
    for (const entry of batch) {
      const seq = stored.get(entry.row.id);
      stored.delete(entry.row.id);
      entry.resolve(seq === undefined ? { duplicate: true, seq: undefined } : { duplicate: false, seq });
    }
  }

  /**
   * Inserts in the batch's order (so `seq` follows it), on the pool or on a caller's transaction; returns the stored
   * ids with their positions.
   */
  private async insertMany(
    rows: ActivityRow[],
    sql: postgres.ISql<Types> = this.sql,
  ): Promise<Map<string, string>> {
    // Text columns, cast like the single insert: the JSON columns travel as strings, not as nested JSON.
    const input = JSON.stringify(rows.map((row, n) => ({ n, ...row })));
    const stored = await sql<{ id: string; seq: string }[]>`
      INSERT INTO activity_log (id, type, subject, source, time, data, envelope, subjects)
      SELECT r.id, r.type, r.subject, r.source, r.time::timestamptz, r.data::jsonb, r.envelope::jsonb,
        ARRAY(SELECT jsonb_array_elements_text(r.subjects::jsonb))
      FROM jsonb_to_recordset(${input}::text::jsonb) AS r(n int, id text, type text, subject text, source text,
        time text, data text, envelope text, subjects text)
      ORDER BY r.n
      ON CONFLICT (id) DO NOTHING
      RETURNING id, seq::text AS seq`;
    return new Map(stored.map((row) => [row.id, row.seq]));
  }

  /** GET /v1/activity: newest first, keyset on the log's sequence. */
  async listActivity(input: ListActivityQuery): Promise<Page<Envelope>> {
    const parsed = v.safeParse(ListActivityQuery, input);
    if (!parsed.success) throw validationError("request.invalid", "activity query", parsed.issues);
    const { subject, type, limit, cursor } = parsed.output;
    const before = cursor === undefined ? undefined : decodeCursor(cursor, ActivityCursor).s;
    const sql = this.sql;
    const none = sql``;
    // The types that start with `name.`: in bytewise order, those from `name.` up to `name/` ('/' follows '.'), a
    // range of activity_log_type_family. starts_with(type, …) would compare the same, but no index serves it.
    const family = (name: string) =>
      sql`AND type COLLATE "C" >= ${`${name}.`} AND type COLLATE "C" < ${`${name}/`}`;
    // The position comes back as text (any pool, any int8 parser); ORDER BY names the bigint column, not it.
    const rows = await sql<{ position: string; envelope: Envelope }[]>`
      SELECT seq::text AS position, envelope FROM activity_log
      WHERE TRUE
        ${subject === undefined ? none : sql`AND subjects @> ARRAY[${subject}::text]`}
        ${type === undefined ? none : type.endsWith(".*") ? family(type.slice(0, -2)) : sql`AND type = ${type}`}
        ${before === undefined ? none : sql`AND seq < ${before}::bigint`}
      ORDER BY activity_log.seq DESC
      LIMIT ${limit + 1}`;
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map((row) => row.envelope),
      nextCursor: rows.length > limit && last ? encodeCursor({ s: last.position }) : null,
    };
  }

  /** The newest entries with their positions in the log, newest first (the operator console's first rows). */
  async latestActivity(limit: number): Promise<Array<{ position: string; envelope: Envelope }>> {
    return this.sql<{ position: string; envelope: Envelope }[]>`
      SELECT seq::text AS position, envelope FROM activity_log
      ORDER BY seq DESC LIMIT ${positiveLimit(limit)}`;
  }

  /** The entries after `position` (a `seq`), oldest first (the operator console's live tail). */
  async activityAfter(
    position: string,
    limit: number,
  ): Promise<Array<{ position: string; envelope: Envelope }>> {
    if (!/^(0|[1-9][0-9]{0,18})$/.test(position) || BigInt(position) > 9_223_372_036_854_775_807n) {
      throw new EdgewiseError("request.invalid", "an activity position is a non-negative integer");
    }
    return this.sql<{ position: string; envelope: Envelope }[]>`
      SELECT seq::text AS position, envelope FROM activity_log
      WHERE seq > ${position}::bigint
      ORDER BY seq LIMIT ${positiveLimit(limit)}`;
  }

  /**
   * Deletes entries recorded before `olderThan`, oldest first, `batchSize` per transaction; returns how many.
   * With `types`, only entries of those types (`security.auth_failed`, …). Finding them reads the log in sequence
   * order, so run it from a periodic job, not a request.
   */
  async pruneActivity(options: {
    olderThan: Date | number;
    batchSize?: number;
    types?: readonly string[];
  }): Promise<number> {
    const batchSize = options.batchSize ?? 1000;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new EdgewiseError("config.invalid", "pruneActivity: batchSize must be a positive integer");
    }
    const cutoff = new Date(options.olderThan).toISOString();
    const types = options.types ? [...options.types] : undefined;
    let deleted = 0;
    for (;;) {
      const count = await this.sql.begin(async (tx) => {
        await tx`SELECT set_config(${pruneSetting}, 'on', true)`;
        const rows = await tx`
          DELETE FROM activity_log WHERE seq IN (
            SELECT seq FROM activity_log WHERE recorded_at < ${cutoff}::timestamptz
            ${types ? tx`AND type = ANY(${types})` : tx``} ORDER BY seq LIMIT ${batchSize})
          RETURNING seq`;
        return rows.length;
      });
      deleted += count;
      if (count < batchSize) return deleted;
    }
  }
}
