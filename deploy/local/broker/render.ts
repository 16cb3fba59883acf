// JSON shapes of the QStash API (as @upstash/qstash 2.12 reads them) for messages, DLQ entries and events.
import { bodyFields } from "./http-util.ts";
import type { DlqRow, EventRow, MessageRow } from "./types.ts";

const listHeaders = (headers: Record<string, string> | null) =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, [v]]));

type Stored = Pick<
  MessageRow,
  | "url"
  | "method"
  | "headers"
  | "body"
  | "queue_name"
  | "max_retries"
  | "not_before"
  | "created_at"
  | "caller_ip"
>;

function common(row: Stored) {
  return {
    url: row.url,
    method: row.method,
    header: listHeaders(row.headers),
    ...bodyFields(row.body),
    maxRetries: row.max_retries,
    ...(row.not_before !== null ? { notBefore: row.not_before } : {}),
    createdAt: row.created_at,
    ...(row.queue_name ? { queueName: row.queue_name } : {}),
    ...(row.caller_ip ? { callerIP: row.caller_ip, callerIp: row.caller_ip } : {}),
  };
}

/** GET /v2/messages/{id}: the message as it waits, with how many attempts it has had. */
export function renderMessage(row: MessageRow) {
  return {
    messageId: row.id,
    ...common(row),
    state: row.state === "active" ? "ACTIVE" : row.attempts > 0 ? "RETRY" : "CREATED",
    retried: Math.max(0, row.state === "active" ? row.attempts - 1 : row.attempts),
    nextDeliveryTime: row.due_at,
  };
}

/** A DLQ entry: the message, plus the last response that sent it there. */
export function renderDlq(row: DlqRow) {
  const response = bodyFields(row.response_body);
  return {
    messageId: row.message_id,
    dlqId: row.dlq_id,
    ...common(row),
    retried: Math.max(0, row.attempts - 1),
    ...(row.response_status !== null ? { responseStatus: row.response_status } : {}),
    ...(row.response_headers ? { responseHeader: listHeaders(row.response_headers) } : {}),
    ...(response.body !== undefined ? { responseBody: response.body } : {}),
    ...(response.bodyBase64 !== undefined ? { responseBodyBase64: response.bodyBase64 } : {}),
    ...(row.last_error ? { error: row.last_error } : {}),
  };
}

/** One log line (GET /v2/events, /v2/logs). */
export function renderEvent(row: EventRow) {
  return {
    time: row.time,
    messageId: row.message_id,
    state: row.state,
    url: row.url,
    ...(row.queue_name ? { queueName: row.queue_name } : {}),
    ...(row.response_status !== null ? { responseStatus: row.response_status } : {}),
    ...(row.error ? { error: row.error } : {}),
    ...(row.next_delivery_time !== null ? { nextDeliveryTime: row.next_delivery_time } : {}),
  };
}
