// The billing ledger: customer accounts in Postgres, and the `billing` MessageConsumer that charges and refunds orders.
import * as v from "valibot";
import { type Clock, dueAfter, systemClock } from "../../../shared/clock/index.ts";
import { type Envelope, parseEnvelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import type { SchemaMarkers } from "../../../shared/postgres/schema-marker.ts";
import { rolledBackForConflict } from "../../../shared/resilience/sql-failures.ts";
import {
  activeContext,
  contextFromTraceparent,
  inSpan,
  hasSpan,
  producerSpan,
  type Span,
  trace,
  tracer,
} from "../../../shared/telemetry/trace/index.ts";
import type { MessageConsumer } from "../../runtime/consumers.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import { CustomerId, Participants } from "../messages.ts";
import { type Applied, type BillingOutcome, capture, parseCommand, refund } from "./commands.ts";
import { lockCustomer, post, SystemMoves } from "./journal.ts";
import { enqueue } from "./outbox.ts";
import { type BillingSql, type BillingTx, migrateBilling, SystemAccounts } from "./schema.ts";

export interface Account {
  customerId: string;
  balanceCents: number;
}

/** A balance as `putAccount` set it, with the one it replaced (0 for a new account), read under the same lock. */
export interface AccountSet extends Account {
  previousBalanceCents: number;
}

/**
 * Writes the record of a balance set (the activity log's `admin.account_set`, on the same database) on the set's
 * own transaction: the record and the balance commit together or not at all, and if it throws the balance is not
 * set. The ledger knows nothing of what the record says or where it goes.
 */
export type AccountSetRecorder = (tx: BillingTx, set: AccountSet) => Promise<unknown>;

export interface BillingLedgerOptions {
  /** Called after a transaction that wrote to the outbox committed; wire it to `BillingOutboxRelay.notify`. */
  onCommitted?: () => void;
  /**
   * Called once per delivery after its transaction committed (never for one rolled back), with what it did; not
   * called for a refund of an order with nothing paid. Wire it to `EdgewiseMetrics.billingPayment`.
   */
  onOutcome?: (outcome: BillingOutcome) => void;
  /**
   * How long a handled message id, and the reply stored with it, is kept to answer a redelivery: as long as the
   * actors' inbox keeps theirs (`EDGEWISE_INBOX_RETENTION`), 7 days by default, far beyond the broker's retries.
   * A redelivery later than that is still charged at most once per order (unique indexes); its reply is made again.
   */
  processedRetentionMs?: number;
  /** Older ids are pruned after a commit, at most this often (and at the first commit). Default 1 hour. */
  pruneEveryMs?: number;
  /**
   * When the last prune ran, shared by ledgers that should prune once a period between them: on Workers a ledger is
   * built per request, and without it each request's first payment would prune. Default: this ledger's own.
   */
  pruneSchedule?: PruneSchedule;
  /** A failed prune is retried at the next one; this hears about it. */
  onPruneError?: (error: unknown) => void;
  /** Its wall time dates the prunes (the cutoff is compared with Postgres's `processed_at`). Default `systemClock`. */
  clock?: Clock;
}

/** When handled ids were last pruned (ms since the epoch), or undefined before the first prune. */
export interface PruneSchedule {
  lastAt: number | undefined;
}

const PRUNE_BATCH = 5_000;

const AccountInput = v.object({
  customerId: CustomerId,
  balanceCents: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
});

/**
 * Every change is one short Postgres transaction on the caller's pool: the journal entries, the balances, the
 * handled message id and the reply in the outbox commit together or not at all. A database failure throws
 * `unavailable` (retryable), after one rerun of a transaction the server rolled back for a conflict with another;
 * bad input throws a poison code before any database work.
 */
export class BillingLedger implements MessageConsumer {
  readonly type = Participants.billing;

  constructor(
    private readonly sql: BillingSql,
    private readonly options: BillingLedgerOptions = {},
  ) {
    this.pruneSchedule = options.pruneSchedule ?? { lastAt: undefined };
  }

  /** Creates the billing tables if missing; safe on every start and from several nodes at once. */
  migrate(markers?: SchemaMarkers): Promise<void> {
    return migrateBilling(this.sql, markers);
  }

  /**
   * `PUT /v1/accounts/{customerId}`: sets the balance, creating the account, by funding the difference. Also
   * returns the balance it replaced (0 for a new account), read under the same lock, for the admin event; `record`
   * writes that event in the same transaction, so a set is never kept without it. `signal`: the caller's deadline
   * (the `postgres` dependency's timeout, the request's). Once it fired the caller has answered with an error, so
   * the set is rolled back rather than committed after that answer (a lock wait can outlast it).
   */
  async putAccount(
    customerId: string,
    balanceCents: number,
    record?: AccountSetRecorder,
    signal?: AbortSignal,
  ): Promise<AccountSet> {
    const parsed = v.safeParse(AccountInput, { customerId, balanceCents });
    if (!parsed.success) throw validationError("request.invalid", "account", parsed.issues);
    return await this.transaction(
      async (tx, system) => {
        await tx`
          INSERT INTO billing_accounts (id, kind) VALUES (${customerId}, 'customer') ON CONFLICT (id) DO NOTHING`;
        const current = await lockCustomer(tx, customerId);
        if (current === undefined) throw new EdgewiseError("conflict", `account id "${customerId}" is taken`);
        if (balanceCents > current) await leaveRoomForRefunds(tx, customerId, balanceCents, current);
        const delta = balanceCents - current;
        if (delta !== 0) {
          await post(
            tx,
            {
              kind: "funding",
              customerId,
              orderId: null,
              messageId: null,
              entries: [
                { accountId: customerId, amountCents: delta },
                { accountId: SystemAccounts.funding, amountCents: -delta },
              ],
            },
            system,
          );
        }
        return { customerId, balanceCents, previousBalanceCents: current } satisfies AccountSet;
      },
      async (tx, set) => {
        // The record is the last write before COMMIT, after the system accounts' moves (which may wait on another
        // transaction): its seq is taken right before COMMIT, as any other entry's is. An entry the log took during
        // that wait has a lower seq, so a reader going on from the highest seq it has seen (the console's live
        // tail) does not step over the record.
        if (record) await record(tx, set);
        if (signal?.aborted) {
          throw new EdgewiseError("timeout", "the caller stopped waiting: the balance set is rolled back", {
            cause: signal.reason,
          });
        }
      },
    );
  }

  /** `GET /v1/accounts/{customerId}`; `not_found` if it was never set. */
  async getAccount(customerId: string): Promise<Account> {
    const parsed = v.safeParse(CustomerId, customerId);
    if (!parsed.success) throw validationError("request.invalid", "customerId", parsed.issues);
    const rows = await this.query(
      (sql) => sql`
        SELECT balance_cents FROM billing_accounts WHERE id = ${customerId} AND kind = 'customer'`,
    );
    const row = rows[0];
    if (!row) throw new EdgewiseError("not_found", `account "${customerId}" does not exist`);
    return { customerId, balanceCents: Number(row.balance_cents) };
  }

  /**
   * A queued `PaymentRequested` or `RefundRequested` for `billing/{customerId}`. Resolves once committed,
   * with the reply envelope (or null when there is none); a message id seen before for this target does
   * nothing and resolves with the reply stored the first time, `duplicate: true`.
   */
  async receive(input: Envelope): Promise<TurnOutcome> {
    // One span for the ledger transaction; its reply gets a PRODUCER span whose context the reply carries.
    // Called outside a delivery span (a Worker, a test), the message's own traceparent is the parent, so the
    // trace does not break here.
    const active = activeContext();
    const parent = hasSpan(active)
      ? active
      : contextFromTraceparent(input?.traceparent, input?.tracestate, active);
    const span = tracer().startSpan(`billing ${String(input?.type)}`, {}, parent);
    if (!span.isRecording()) return await this.receiveTraced(input, undefined);
    return await inSpan(parent, span, () => this.receiveTraced(input, span));
  }

  private async receiveTraced(input: Envelope, span: Span | undefined): Promise<TurnOutcome> {
    const envelope = parseEnvelope(input);
    span?.setAttributes({
      "edgewise.actor.type": Participants.billing,
      "edgewise.actor.key": String(envelope.target).split("/")[1] ?? "",
      "edgewise.message.type": envelope.type,
      "messaging.message.id": envelope.id,
      "db.system.name": "postgresql",
    });
    const command = parseCommand(envelope);
    const target = envelope.target as string;
    const { outcome, did } = await this.transaction(async (tx, system) => {
      const claimed = await tx`
        INSERT INTO billing_processed_messages (message_id, target, type)
        VALUES (${envelope.id}, ${target}, ${envelope.type}) ON CONFLICT DO NOTHING RETURNING message_id`;
      if (claimed.length === 0) {
        const [seen] = await tx`
          SELECT reply::text AS reply FROM billing_processed_messages
          WHERE message_id = ${envelope.id} AND target = ${target}`;
        const outcome: TurnOutcome = {
          duplicate: true,
          reply: seen?.reply ? JSON.parse(String(seen.reply)) : null,
        };
        return { outcome, did: "duplicate" as BillingOutcome | undefined };
      }
      const applied: Applied =
        command.type === "PaymentRequested"
          ? await capture(tx, envelope, command.data, system)
          : await refund(tx, envelope, command.data, system);
      const reply = applied.reply;
      if (reply) {
        const produced = span ? producerSpan(trace.setSpan(activeContext(), span), reply) : undefined;
        if (produced) {
          reply.traceparent = produced.traceparent;
          if (produced.tracestate) reply.tracestate = produced.tracestate;
        }
        await enqueue(tx, [reply]);
        await tx`
          UPDATE billing_processed_messages SET reply = ${JSON.stringify(reply)}::text::jsonb
          WHERE message_id = ${envelope.id} AND target = ${target}`;
      }
      const outcome: TurnOutcome = { duplicate: false, reply: reply ?? null };
      return { outcome, did: applied.outcome };
    });
    if (did) this.options.onOutcome?.(did);
    span?.setAttribute("edgewise.turn.outcome", outcome.duplicate ? "duplicate" : "write");
    if (!outcome.duplicate && outcome.reply !== null) this.options.onCommitted?.();
    if (!outcome.duplicate) this.pruneIfDue();
    return outcome;
  }

  private readonly pruneSchedule: PruneSchedule;

  /** Every handled message leaves a row: without this, billing_processed_messages grows by one per payment. */
  private pruneIfDue(): void {
    const now = (this.options.clock ?? systemClock).now();
    const last = this.pruneSchedule.lastAt;
    if (!dueAfter(now, last, this.options.pruneEveryMs ?? 3_600_000)) return;
    this.pruneSchedule.lastAt = now;
    const keepMs = this.options.processedRetentionMs ?? 7 * 86_400_000;
    this.pruneProcessed(new Date(now - keepMs)).catch((error: unknown) => this.options.onPruneError?.(error));
  }

  /** Forgets handled message ids older than `before`; keep them longer than the broker retries. */
  async pruneProcessed(before: Date): Promise<number> {
    // In batches, oldest first (the processed_at index), so one prune never holds a connection for long.
    let pruned = 0;
    for (;;) {
      const rows = await this.query(
        (sql) => sql`
          DELETE FROM billing_processed_messages WHERE (message_id, target) IN (
            SELECT message_id, target FROM billing_processed_messages WHERE processed_at < ${before}
            ORDER BY processed_at LIMIT ${PRUNE_BATCH})
          RETURNING 1`,
      );
      pruned += rows.length;
      if (rows.length < PRUNE_BATCH) return pruned;
    }
  }

  /**
   * `work`, then the system accounts' moves, then `last` (the final writes before COMMIT), in one transaction. It is
   * READ COMMITTED whatever the role's `default_transaction_isolation`: the customer's row lock (FOR UPDATE), the
   * system accounts' moves in id order, the balance CHECK and the unique handled message id are what keep the ledger
   * right, and under serializable, payments of one customer at once ended each other (40001) round after round: 25
   * of 30 were refused after their one rerun, and under a short backoff some were dead-lettered. One the server
   * still rolls back for a conflict (a deadlock it broke) runs once more at once: nothing of it was applied, and its
   * handled message id is written in it, so a payment is still taken at most once.
   */
  private async transaction<T>(
    work: (tx: BillingTx, system: SystemMoves) => Promise<T>,
    last?: (tx: BillingTx, result: T) => Promise<void>,
  ): Promise<T> {
    const run = async () =>
      (await this.sql.begin("isolation level read committed", async (tx) => {
        const system = new SystemMoves();
        const result = await work(tx, system);
        await system.apply(tx);
        if (last) await last(tx, result);
        return result;
      })) as T;
    try {
      return await run().catch((error: unknown) => {
        if (!rolledBackForConflict(error)) throw error;
        return run();
      });
    } catch (error) {
      throw asRetryable(error);
    }
  }

  private async query<T>(work: (sql: BillingSql) => Promise<T>): Promise<T> {
    try {
      return await work(this.sql);
    } catch (error) {
      throw asRetryable(error);
    }
  }
}

/**
 * Refuses (`conflict`, 409) a balance that a refund of the customer's captures not yet refunded would take past
 * MAX_SAFE_INTEGER cents. Any of them may still be refunded (a confirmed order may be cancelled at any time), and
 * the journal refuses a posting past that bound: before, such a refund was retried and dead-lettered, the order
 * cancelled but its money never back. Captures and refunds leave balance + unrefunded captures unchanged, so a
 * balance set within this room keeps every later refund within the bound. Only a raise is checked: a balance set
 * lower never takes a refund nearer the bound. Runs with the customer's row locked, as captures and refunds do.
 *
 * The customer's unrefunded captures are summed from its journal, which grows with its history (1 s for a customer
 * of 20,000 orders, measured on a year of a shop's data), so they are summed only when the balance is within
 * `system:revenue` of the bound: that account holds every customer's captures less their refunds, so never less
 * than this one's unrefunded captures, and reading it is one row.
 */
async function leaveRoomForRefunds(
  tx: BillingTx,
  customerId: string,
  balanceCents: number,
  current: number,
): Promise<void> {
  const [revenue] =
    await tx`SELECT balance_cents::text AS cents FROM billing_accounts WHERE id = ${SystemAccounts.revenue}`;
  const mostRefundable = BigInt((revenue?.cents as string | undefined) ?? "0");
  if (mostRefundable >= 0n && BigInt(balanceCents) + mostRefundable <= BigInt(Number.MAX_SAFE_INTEGER))
    return;
  const [row] = await tx`
    SELECT coalesce(sum(-e.amount_cents), 0)::text AS cents
    FROM billing_transactions c
    JOIN billing_entries e ON e.transaction_id = c.id AND e.account_id = c.customer_id
    WHERE c.customer_id = ${customerId} AND c.kind = 'capture' AND NOT EXISTS (
      SELECT 1 FROM billing_transactions r WHERE r.order_id = c.order_id AND r.kind = 'refund')`;
  const refundable = BigInt((row?.cents as string | undefined) ?? "0");
  const room = BigInt(Number.MAX_SAFE_INTEGER) - refundable;
  if (BigInt(balanceCents) <= room) return;
  const most = room > BigInt(current) ? room : BigInt(current);
  throw new EdgewiseError(
    "conflict",
    `balanceCents must be at most ${most} for this customer: ${refundable} cents of its captures may still be refunded, and no balance may pass ${Number.MAX_SAFE_INTEGER} cents`,
  );
}

/** Our own errors pass through; anything from the driver or the database becomes `unavailable` (503). */
function asRetryable(error: unknown): EdgewiseError {
  if (error instanceof EdgewiseError) return error;
  return new EdgewiseError("unavailable", "the billing ledger is unavailable; retry", { cause: error });
}
