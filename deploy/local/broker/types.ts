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
  /** When the attempt under way was claimed (ms since epoch); null when pending. */
  active_at: number | null;
  /** Whether its CREATED event is in qstash_events yet (see store-events.ts: until then it is read off this row). */
  logged: boolean;
}

export interface DlqRow
  extends Omit<
    MessageRow,
    "seq" | "state" | "due_at" | "last_status" | "last_error" | "active_at" | "logged"
  > {
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

/** One event, as GET /v2/events lists it. */
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

/**
 * A row of qstash_events: one event, which may also carry the message's CREATED event and the attempt's ACTIVE
 * event that came before it (`created_time`, `created_due`, `active_time`), so that a message delivered at the
 * first attempt costs one row rather than three. See store-events.ts.
 */
export interface EventInsert extends EventRow {
  created_time: number | null;
  /** The CREATED event's nextDeliveryTime. */
  created_due: number | null;
  active_time: number | null;
}
