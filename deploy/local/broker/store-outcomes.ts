// Recording delivery outcomes: delivered messages leave, retries are rescheduled, failures move to the DLQ.
import type postgres from "postgres";
import { relaxedCommit, type Sql } from "./db.ts";
import { eventRows, insertEvents } from "./store-events.ts";
import type { Outcome } from "./types.ts";

const MAX_RESPONSE_BODY = 64 * 1024;
/** Rows travel as one jsonb parameter, expanded with jsonb_to_recordset: cheaper than a parameter per cell. */
const rowsParam = (rows: unknown[]) => rows as unknown as postgres.JSONValue;

/**
 * Writes a group of outcomes atomically (a group commit): one statement when all of them are deliveries, as
 * they nearly always are, else one transaction. Each message is found by its primary key (`id = ANY`), and
 * its events are logged only if the statement changed its row, so an outcome for a message cancelled
 * meanwhile changes and logs nothing, and neither does one written again after its reply was lost. The events
 * come from the claimed row (store-events.ts): nothing but this attempt's outcome changes an active message,
 * short of a cancel that deletes it.
 */
export async function recordOutcomes(sql: Sql, outcomes: Outcome[], newDlqId: () => string): Promise<void> {
  const now = Date.now();
  const delivered = outcomes.flatMap((o) => (o.kind === "delivered" ? [o] : []));
  const retries = outcomes.flatMap((o) => (o.kind === "retry" ? [o] : []));
  const failures = outcomes.flatMap((o) => (o.kind === "failed" ? [o] : []));

  const deliver = (db: Sql) => {
    const ids = delivered.map((o) => o.message.id);
    const events = delivered.flatMap((o) =>
      eventRows(o.message, [{ state: "DELIVERED", response_status: o.status }], now),
    );
    // Not waiting for the disk (relaxedCommit): lost in a crash, the message is delivered again.
    return db`
      WITH gone AS (
        DELETE FROM qstash_messages WHERE id = ANY(${ids}::text[]) RETURNING id, ${relaxedCommit(db)}
      )
      ${insertEvents(db, events, "gone")}`;
  };
  if (retries.length === 0 && failures.length === 0) {
    if (delivered.length > 0) await deliver(sql);
    return;
  }

  await sql.begin(async (tx) => {
    const db = tx as unknown as Sql;
    if (delivered.length > 0) await deliver(db);
    if (retries.length > 0) {
      const rows = retries.map((o) => ({
        id: o.message.id,
        active_at: o.message.active_at,
        due: o.dueAt,
        status: o.status,
        error: o.error,
      }));
      const events = retries.flatMap((o) =>
        eventRows(
          o.message,
          [
            { state: "ERROR", response_status: o.status, error: o.error },
            { state: "RETRY", response_status: o.status, next_delivery_time: o.dueAt },
          ],
          now,
        ),
      );
      await db`
        WITH r AS (
          SELECT * FROM jsonb_to_recordset(${db.json(rowsParam(rows))})
            AS r(id text, active_at bigint, due bigint, status int, error text)
        ), kept AS (
          -- Only the attempt this outcome is about: written again after a lost reply, it must not send back to
          -- pending a message that has been claimed again meanwhile.
          UPDATE qstash_messages m SET state = 'pending', due_at = r.due, last_status = r.status,
            last_error = r.error, logged = true, active_at = NULL
          FROM r WHERE m.id = r.id AND m.id = ANY(${rows.map((r) => r.id)}::text[])
            AND m.state = 'active' AND m.active_at = r.active_at
          RETURNING m.id
        )
        ${insertEvents(db, events, "kept")}`;
    }
    if (failures.length > 0) {
      const rows = failures.map((o) => ({
        id: o.message.id,
        dlq_id: newDlqId(),
        status: o.status,
        headers: o.responseHeaders,
        body: o.responseBody
          ? Buffer.from(o.responseBody.subarray(0, MAX_RESPONSE_BODY)).toString("base64")
          : null,
        error: o.error,
      }));
      const events = failures.flatMap((o) =>
        eventRows(
          o.message,
          [
            { state: "ERROR", response_status: o.status, error: o.error },
            { state: "FAILED", response_status: o.status, error: o.error },
          ],
          now,
        ),
      );
      await db`
        WITH f AS (
          SELECT * FROM jsonb_to_recordset(${db.json(rowsParam(rows))})
            AS f(id text, dlq_id text, status int, headers jsonb, body text, error text)
        ), gone AS (
          DELETE FROM qstash_messages m WHERE m.id = ANY(${rows.map((r) => r.id)}::text[]) RETURNING m.*
        ), moved AS (
          INSERT INTO qstash_dlq (dlq_id, message_id, url, method, headers, body, queue_name, max_retries, timeout_ms,
            not_before, created_at, attempts, caller_ip, failed_at, response_status, response_headers, response_body,
            last_error)
          SELECT f.dlq_id, g.id, g.url, g.method, g.headers, g.body, g.queue_name, g.max_retries, g.timeout_ms,
            g.not_before, g.created_at, g.attempts, g.caller_ip, ${now}, f.status, f.headers,
            decode(f.body, 'base64'), f.error
          FROM gone g JOIN f ON f.id = g.id
          RETURNING message_id AS id
        )
        ${insertEvents(db, events, "moved")}`;
    }
  });
}
