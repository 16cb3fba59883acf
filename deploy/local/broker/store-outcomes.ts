// Recording delivery outcomes: delivered messages leave, retries are rescheduled, failures move to the DLQ.
import type postgres from "postgres";
import type { Sql } from "./db.ts";
import type { Outcome } from "./types.ts";

const MAX_RESPONSE_BODY = 64 * 1024;
/** Rows travel as one jsonb parameter, expanded with jsonb_to_recordset: cheaper than a parameter per cell. */
const rowsParam = (rows: unknown[]) => rows as unknown as postgres.JSONValue;

/**
 * Writes a group of outcomes in one transaction (a group commit). The events are derived in SQL from the rows
 * each statement changed, so an outcome for a message cancelled meanwhile changes and logs nothing.
 */
export async function recordOutcomes(sql: Sql, outcomes: Outcome[], newDlqId: () => string): Promise<void> {
  const now = Date.now();
  const delivered = outcomes
    .filter((o) => o.kind === "delivered")
    .map((o) => ({ id: o.message.id, status: o.status }));
  const retries = outcomes.flatMap((o) =>
    o.kind === "retry" ? [{ id: o.message.id, due: o.dueAt, status: o.status, error: o.error }] : [],
  );
  const failures = outcomes.flatMap((o) =>
    o.kind === "failed"
      ? [
          {
            id: o.message.id,
            dlq_id: newDlqId(),
            status: o.status,
            headers: o.responseHeaders,
            body: o.responseBody
              ? Buffer.from(o.responseBody.subarray(0, MAX_RESPONSE_BODY)).toString("base64")
              : null,
            error: o.error,
          },
        ]
      : [],
  );
  await sql.begin(async (tx) => {
    if (delivered.length > 0) {
      await tx`
        WITH d AS (SELECT * FROM jsonb_to_recordset(${tx.json(rowsParam(delivered))}) AS d(id text, status int)),
        gone AS (
          DELETE FROM qstash_messages m USING d WHERE m.id = d.id RETURNING m.id, m.url, m.queue_name, d.status
        )
        INSERT INTO qstash_events (time, message_id, state, url, queue_name, response_status)
        SELECT ${now}, id, 'DELIVERED', url, queue_name, status FROM gone`;
    }
    if (retries.length > 0) {
      await tx`
        WITH r AS (
          SELECT * FROM jsonb_to_recordset(${tx.json(rowsParam(retries))}) AS r(id text, due bigint, status int, error text)
        ), kept AS (
          UPDATE qstash_messages m SET state = 'pending', due_at = r.due, last_status = r.status, last_error = r.error
          FROM r WHERE m.id = r.id RETURNING m.id, m.url, m.queue_name, r.status, r.error, r.due
        )
        INSERT INTO qstash_events (time, message_id, state, url, queue_name, response_status, error, next_delivery_time)
        SELECT ${now}, id, e.state, url, queue_name, status, CASE WHEN e.state = 'ERROR' THEN error END,
          CASE WHEN e.state = 'RETRY' THEN due END
        FROM kept CROSS JOIN (VALUES (1, 'ERROR'), (2, 'RETRY')) AS e(n, state) ORDER BY kept.id, e.n`;
    }
    if (failures.length > 0) {
      await tx`
        WITH f AS (
          SELECT * FROM jsonb_to_recordset(${tx.json(rowsParam(failures))})
            AS f(id text, dlq_id text, status int, headers jsonb, body text, error text)
        ), gone AS (
          DELETE FROM qstash_messages m USING f WHERE m.id = f.id RETURNING m.*
        ), moved AS (
          INSERT INTO qstash_dlq (dlq_id, message_id, url, method, headers, body, queue_name, max_retries, timeout_ms,
            not_before, created_at, attempts, caller_ip, failed_at, response_status, response_headers, response_body,
            last_error)
          SELECT f.dlq_id, g.id, g.url, g.method, g.headers, g.body, g.queue_name, g.max_retries, g.timeout_ms,
            g.not_before, g.created_at, g.attempts, g.caller_ip, ${now}, f.status, f.headers,
            decode(f.body, 'base64'), f.error
          FROM gone g JOIN f ON f.id = g.id
          RETURNING message_id, url, queue_name, response_status, last_error
        )
        INSERT INTO qstash_events (time, message_id, state, url, queue_name, response_status, error)
        SELECT ${now}, message_id, e.state, url, queue_name, response_status, last_error
        FROM moved CROSS JOIN (VALUES (1, 'ERROR'), (2, 'FAILED')) AS e(n, state) ORDER BY moved.message_id, e.n`;
    }
  });
}
