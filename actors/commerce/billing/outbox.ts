// Billing's transactional outbox: replies written with the ledger change, relayed to the transport in seq order.
import type { Envelope } from "../../../shared/envelope/index.ts";
import {
  defaultRelayPolicy,
  sendRetryDelay,
  type RelayPass,
  type RelayPolicy,
  relayFailureFields,
  retryDelay,
  retryHorizonMs,
} from "../../runtime/relay.ts";
import { sendTraced } from "../../runtime/send-span.ts";
import type { Transport } from "../../runtime/transport.ts";
import type { BillingSql, BillingTx } from "./schema.ts";

/** Adds messages to the outbox inside the caller's transaction: they leave only if it commits. */
export async function enqueue(tx: BillingTx, envelopes: readonly Envelope[]): Promise<void> {
  for (const envelope of envelopes) {
    // Written as text: postgres.js would JSON-encode a string bound to a jsonb parameter a second time.
    await tx`INSERT INTO billing_outbox (envelope) VALUES (${JSON.stringify(envelope)}::text::jsonb)`;
  }
}

export interface BillingRelayOptions {
  /** Batch size and retry backoff; the runtime relay's defaults. */
  policy?: RelayPolicy;
  /** Longest sleep between passes when not notified. Default 1 s. */
  intervalMs?: number;
  /**
   * How long a claimed batch stays invisible to other relays while it is being sent. Default 10 s: twice the
   * broker's 5 s call timeout, so a live relay finishes well within it, and a relay killed mid-send holds its batch
   * back (and, by seq order, every later message) for at most that long. A lease that ran out under a relay still
   * sending only means a duplicate publish, which the queue's deduplication id and the receivers absorb.
   */
  leaseMs?: number;
  /**
   * Reports failed passes; defaults to console.error. `fields` says what failed: the message ids and the actors they
   * are addressed to (`relayFailureFields`).
   */
  onError?: (what: string, error: unknown, fields?: Record<string, unknown>) => void;
}

/** See `BillingRelayOptions.leaseMs`. */
export const defaultLeaseMs = 10_000;

interface ClaimedRow {
  seq: number | string;
  envelope: string;
  attempts: number;
}

/**
 * Drains `billing_outbox` to a transport, at least once and in seq order: a batch is claimed by pushing its
 * `available_at` forward (a lease), sent, and deleted only once `transport.send` resolved. A failed batch
 * gets `attempts + 1` and a backoff, and nothing after it is sent before it. Envelope ids are the stored
 * ones, so a resend is deduplicated downstream.
 */
export class BillingOutboxRelay {
  private readonly policy: RelayPolicy;
  private readonly intervalMs: number;
  private readonly leaseMs: number;
  private readonly onError: (what: string, error: unknown, fields?: Record<string, unknown>) => void;
  private running = false;
  private loop: Promise<void> | undefined;
  private kicked = false;
  private wake: (() => void) | undefined;
  /** The backoff the last failed send set, so the loop wakes up for the retry. */
  private retryInMs: number | undefined;

  constructor(
    private readonly sql: BillingSql,
    private readonly transport: Transport,
    options: BillingRelayOptions = {},
  ) {
    this.policy = options.policy ?? defaultRelayPolicy;
    this.intervalMs = options.intervalMs ?? 1_000;
    this.leaseMs = options.leaseMs ?? defaultLeaseMs;
    this.onError =
      options.onError ??
      ((what, error, fields) => console.error(`[edgewise] ${what}`, ...(fields ? [fields] : []), error));
  }

  /** One pass: claims up to a batch of due messages in seq order and sends them as one ordered batch. */
  async relayOnce(): Promise<RelayPass> {
    const rows = await this.claim();
    if (rows.length === 0) return { sent: 0, failed: 0 };
    const seqs = rows.map((row) => row.seq);
    const envelopes = rows.map((row) => JSON.parse(row.envelope) as Envelope);
    try {
      await sendTraced(this.transport, envelopes);
    } catch (error) {
      const attempts = Math.max(...rows.map((row) => row.attempts)) + 1;
      const delay = sendRetryDelay(this.transport, error, attempts, this.policy);
      this.retryInMs = delay;
      await this.sql`
        UPDATE billing_outbox SET attempts = attempts + 1, last_error = ${errorText(error)},
          available_at = now() + ${delay}::float8 * interval '1 millisecond'
        WHERE seq IN ${this.sql(seqs)}`;
      // Billing is no actor: each message is named with the actor it is addressed to.
      const failedMessages = envelopes.map((envelope) => ({
        id: envelope.id,
        actor: envelope.target ?? "(no target)",
      }));
      return { sent: 0, failed: rows.length, lastError: error, failedMessages };
    }
    await this.sql`DELETE FROM billing_outbox WHERE seq IN ${this.sql(seqs)}`;
    return { sent: rows.length, failed: 0 };
  }

  /** Messages still in the outbox, due or backing off (a lag gauge). */
  async pending(): Promise<number> {
    const [row] = await this.sql`SELECT count(*) AS n FROM billing_outbox`;
    return Number(row?.n ?? 0);
  }

  /**
   * What is still in the outbox and how long its oldest message has waited: the `/metrics` gauges of a relay that
   * is stuck (a broker refusing its batch), since billing's replies never pass through an actor's outbox.
   */
  async backlog(): Promise<{ pending: number; oldestAgeMs: number }> {
    const [row] = await this.sql`
      SELECT count(*) AS n,
        coalesce(extract(epoch FROM clock_timestamp() - min(created_at)) * 1000, 0)::float8 AS age
      FROM billing_outbox`;
    return { pending: Number(row?.n ?? 0), oldestAgeMs: Math.max(0, Number(row?.age ?? 0)) };
  }

  /** Runs passes in the background until `stop()`: at once when notified, else every `intervalMs`. */
  start(): this {
    if (this.running) return this;
    this.running = true;
    this.loop = this.run();
    return this;
  }

  /** Stops the loop; resolves once the pass in progress (if any) has finished. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
  }

  /** Wakes the loop for a pass now; the ledger calls it after committing a reply. */
  notify(): void {
    this.kicked = true;
    this.wake?.();
  }

  /**
   * Claims the longest due prefix of the outbox, up to a batch: a message that is backing off, or leased by
   * another relay, holds back every later one. `available_at` is Postgres's wall time, the same clock as the node's
   * with the embedded PGlite: one further ahead than any lease or backoff (`horizon`) was set before that clock was
   * stepped back, and is due. Without the bound, a failed send just before a step back of an hour held every later
   * reply, every order's payment, for the hour.
   */
  private async claim(): Promise<ClaimedRow[]> {
    const horizon = Math.max(this.leaseMs + 1_000, retryHorizonMs(this.policy));
    const rows = await this.sql<ClaimedRow[]>`
      UPDATE billing_outbox SET available_at = now() + ${this.leaseMs}::float8 * interval '1 millisecond'
      WHERE seq IN (
        SELECT seq FROM billing_outbox
        WHERE (available_at <= now() OR available_at > now() + ${horizon}::float8 * interval '1 millisecond')
          AND seq < coalesce((SELECT min(seq) FROM billing_outbox WHERE available_at > now()
                                AND available_at <= now() + ${horizon}::float8 * interval '1 millisecond'),
                             9223372036854775807)
        ORDER BY seq LIMIT ${this.policy.batchSize}
        FOR UPDATE SKIP LOCKED)
      RETURNING seq, envelope::text AS envelope, attempts`;
    return [...rows].sort((a, b) => Number(a.seq) - Number(b.seq));
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.kicked = false;
      this.retryInMs = undefined;
      let sleepMs = this.intervalMs;
      try {
        const pass = await this.relayOnce();
        failures = 0;
        if (pass.lastError !== undefined) {
          this.onError(
            `billing relay: ${pass.failed} messages will be retried`,
            pass.lastError,
            relayFailureFields(pass.failedMessages ?? []),
          );
        }
        if (pass.sent >= this.policy.batchSize) sleepMs = 0;
        else if (this.retryInMs !== undefined) sleepMs = Math.min(sleepMs, this.retryInMs);
      } catch (error) {
        failures++;
        this.onError("billing relay pass failed", error);
        sleepMs = retryDelay(failures, this.policy);
      }
      if (sleepMs > 0 && !this.kicked && this.running) await this.sleep(sleepMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 1_000);
}
