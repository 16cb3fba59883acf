// Billing's commands: PaymentRequested and RefundRequested, validated, and applied to the journal in the caller's transaction.
import * as v from "valibot";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import { newId } from "../../../shared/ids/index.ts";
import { formatAddress } from "../../runtime/address.ts";
import { targetOf } from "../../runtime/host.ts";
import { customerKey } from "../customer-key.ts";
import { Participants, PaymentRequested, RefundRequested } from "../messages.ts";
import { lockCustomer, post, type SystemMoves } from "./journal.ts";
import { type BillingTx, SystemAccounts } from "./schema.ts";

/** The `source` of every message billing sends. */
export const billingSource = "edgewise://billing";

/**
 * What a billing delivery did, for `edgewise_billing_payments_total`: `captured` (the order was charged),
 * `failed` (PaymentFailed, insufficient funds), `refunded` (a capture credited back), `duplicate` (already
 * handled: the same message id, or an order already charged or refunded; nothing changed).
 */
export type BillingOutcome = "captured" | "failed" | "refunded" | "duplicate";

/** A command's reply (none when there is nothing to answer) and its outcome (none for a refund of nothing paid). */
export interface Applied {
  reply: Envelope | undefined;
  outcome: BillingOutcome | undefined;
}

export type BillingCommand =
  | { type: "PaymentRequested"; data: v.InferOutput<typeof PaymentRequested> }
  | { type: "RefundRequested"; data: v.InferOutput<typeof RefundRequested> };

const schemas = { PaymentRequested, RefundRequested } as const;

/**
 * Checks a delivery before any database work: it must target `billing/{customerId}` with a known type and
 * data that passes its schema. Every failure here is poison (the same on every retry).
 */
export function parseCommand(envelope: Envelope): BillingCommand {
  const address = targetOf(envelope);
  if (address.type !== Participants.billing) {
    throw new EdgewiseError("envelope.invalid", `billing cannot take a message for ${envelope.target}`);
  }
  if (envelope.type !== "PaymentRequested" && envelope.type !== "RefundRequested") {
    throw new EdgewiseError("message.unknown_type", `billing has no handler for "${envelope.type}"`);
  }
  const parsed = v.safeParse(schemas[envelope.type], envelope.data);
  if (!parsed.success) throw validationError("message.invalid", `${envelope.type} message`, parsed.issues);
  if (customerKey(parsed.output.customerId) !== address.key) {
    throw new EdgewiseError("message.invalid", `${envelope.type} is for another customer than its target`, {
      issues: [{ path: "customerId", message: `must equal the target's key "${address.key}"` }],
    });
  }
  return { type: envelope.type, data: parsed.output };
}

/**
 * Debits the customer for the order, or answers PaymentFailed. An order is charged once whatever the message
 * id: a second request finds the capture and answers it again, under the same reply id.
 */
export async function capture(
  tx: BillingTx,
  incoming: Envelope,
  data: v.InferOutput<typeof PaymentRequested>,
  system: SystemMoves,
): Promise<Applied> {
  const { orderId, customerId, amountCents } = data;
  const balance = await lockCustomer(tx, customerId);
  const earlier = (await orderHistory(tx, orderId)).capture;
  if (earlier) {
    const answer = reply(incoming, "PaymentCaptured", capturedId(orderId), {
      orderId,
      customerId,
      amountCents: earlier.amountCents,
      balanceCents: balance ?? 0,
    });
    return { reply: answer, outcome: "duplicate" };
  }
  if (balance === undefined || balance < amountCents) {
    const answer = reply(incoming, "PaymentFailed", newId(), {
      orderId,
      customerId,
      amountCents,
      reason: "insufficient_funds" as const,
    });
    return { reply: answer, outcome: "failed" };
  }
  const balances = await post(
    tx,
    {
      kind: "capture",
      customerId,
      orderId,
      messageId: incoming.id,
      entries: [
        { accountId: customerId, amountCents: -amountCents },
        { accountId: SystemAccounts.revenue, amountCents },
      ],
    },
    system,
  );
  const answer = reply(incoming, "PaymentCaptured", capturedId(orderId), {
    orderId,
    customerId,
    amountCents,
    balanceCents: balances.get(customerId) ?? 0,
  });
  return { reply: answer, outcome: "captured" };
}

/**
 * Credits back the order's capture, once, for the captured amount. Without a capture of this customer, or
 * once refunded, nothing happens and nothing is sent.
 */
export async function refund(
  tx: BillingTx,
  incoming: Envelope,
  data: v.InferOutput<typeof RefundRequested>,
  system: SystemMoves,
): Promise<Applied> {
  const { orderId, customerId } = data;
  const nothing: Applied = { reply: undefined, outcome: undefined };
  if ((await lockCustomer(tx, customerId)) === undefined) return nothing;
  const history = await orderHistory(tx, orderId);
  if (!history.capture || history.capture.customerId !== customerId) return nothing;
  if (history.refunded) return { reply: undefined, outcome: "duplicate" };
  const amountCents = history.capture.amountCents;
  const balances = await post(
    tx,
    {
      kind: "refund",
      customerId,
      orderId,
      messageId: incoming.id,
      entries: [
        { accountId: customerId, amountCents },
        { accountId: SystemAccounts.revenue, amountCents: -amountCents },
      ],
    },
    system,
  );
  const answer = reply(incoming, "PaymentRefunded", refundedId(orderId), {
    orderId,
    customerId,
    amountCents,
    balanceCents: balances.get(customerId) ?? 0,
  });
  return { reply: answer, outcome: "refunded" };
}

/** Reply ids derived from the order: the order's inbox drops a capture or refund announced twice. */
const capturedId = (orderId: string) => `billing.captured.${orderId}`;
const refundedId = (orderId: string) => `billing.refunded.${orderId}`;

interface OrderHistory {
  capture?: { customerId: string; amountCents: number };
  refunded: boolean;
}

/**
 * The order's capture and refund. Only those kinds carry an `order_id` (a CHECK), so the `kind` condition
 * changes no result; it lets the planner use `billing_transactions_once_per_order`, whose index is partial on
 * it, instead of scanning every transaction.
 */
async function orderHistory(tx: BillingTx, orderId: string): Promise<OrderHistory> {
  const rows = await tx`
    SELECT t.kind, t.customer_id, e.amount_cents FROM billing_transactions t
    JOIN billing_entries e ON e.transaction_id = t.id AND e.account_id = t.customer_id
    WHERE t.order_id = ${orderId} AND t.kind IN ('capture', 'refund')`;
  const history: OrderHistory = { refunded: false };
  for (const row of rows) {
    if (row.kind === "capture") {
      history.capture = { customerId: String(row.customer_id), amountCents: -Number(row.amount_cents) };
    } else if (row.kind === "refund") history.refunded = true;
  }
  return history;
}

function reply<Data extends { orderId: string }>(
  incoming: Envelope,
  type: string,
  id: string,
  data: Data,
): Envelope<Data> {
  return createEnvelope({
    id,
    type,
    source: billingSource,
    target: formatAddress({ type: Participants.order, key: data.orderId }),
    data,
    causationid: incoming.id,
    correlationid: incoming.correlationid ?? incoming.id,
    ...(incoming.traceparent ? { traceparent: incoming.traceparent } : {}),
    ...(incoming.tracestate ? { tracestate: incoming.tracestate } : {}),
  });
}
