// Shapes shared by the broker's store, HTTP routes and delivery worker.

/** A message accepted by publish, enqueue or batch, before it is stored. */
export interface NewMessage {
  id: string;
  url: string;
  method: string;
  /** Headers to deliver (forwarded headers with the prefix stripped, and Content-Type), lower-case names. */
  headers: Record<string, string>;
  body: Uint8Array;
  queueName: string | null;
  maxRetries: number;
  timeoutMs: number;
  /** When it may be delivered first (ms since epoch, already time-scaled). */
  dueAt: number;
  /** Upstash-Not-Before as sent (ms since epoch), for GET /v2/messages. */
  notBefore: number | null;
  createdAt: number;
  callerIp: string | null;
  /** Deduplication key (explicit id, or `content:<sha256>`), or null. */
  dedupKey: string | null;
}

/** A row of qstash_messages: only messages still to deliver (pending) or being delivered (active). */
export interface MessageRow {
  id: string;
  seq: number;
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Uint8Array;
  queue_name: string | null;
  max_retries: number;
  timeout_ms: number;
  due_at: number;
  not_before: number | null;
  created_at: number;
  state: "pending" | "active";
  /** Attempts started so far, this one included once claimed. */
  attempts: number;
  caller_ip: string | null;
  last_status: number | null;
  last_error: string | null;
}

export interface DlqRow extends Omit<MessageRow, "seq" | "state" | "due_at" | "last_status" | "last_error"> {
  dlq_id: string;
  seq: number;
  message_id: string;
  failed_at: number;
  response_status: number | null;
  response_headers: Record<string, string> | null;
  response_body: Uint8Array | null;
  last_error: string | null;
}

/** What one delivery attempt came to. */
export type Outcome =
  | { kind: "delivered"; message: MessageRow; status: number }
  | { kind: "retry"; message: MessageRow; status: number | null; error: string; dueAt: number }
  | {
      kind: "failed";
      message: MessageRow;
      status: number | null;
      error: string;
      responseHeaders: Record<string, string> | null;
      responseBody: Uint8Array | null;
    };

export type EventState = "CREATED" | "ACTIVE" | "DELIVERED" | "ERROR" | "RETRY" | "FAILED" | "CANCELED";

export interface EventRow {
  time: number;
  message_id: string;
  state: EventState;
  url: string;
  queue_name: string | null;
  response_status: number | null;
  error: string | null;
  next_delivery_time: number | null;
}
