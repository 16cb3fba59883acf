// The double-entry journal: lock a customer account, and post balanced transactions inside a caller's transaction.
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { newId } from "../../../shared/ids/index.ts";
import type { BillingTx } from "./schema.ts";

export type TransactionKind = "funding" | "capture" | "refund";

export interface Entry {
  accountId: string;
  /** Positive credits the account, negative debits it. */
  amountCents: number;
}

export interface Posting {
  kind: TransactionKind;
  customerId: string;
  /** Set for captures and refunds (one of each per order), null for funding. */
  orderId: string | null;
  /** The message that caused it, for audit. */
  messageId: string | null;
  /** Applied in this order, so list the customer first: every writer locks customer, then system rows. */
  entries: Entry[];
}

/** Locks a customer's account row for the rest of the transaction; undefined when there is none. */
export async function lockCustomer(tx: BillingTx, customerId: string): Promise<number | undefined> {
  const [row] = await tx`
    SELECT balance_cents FROM billing_accounts WHERE id = ${customerId} AND kind = 'customer' FOR UPDATE`;
  return row ? Number(row.balance_cents) : undefined;
}

/**
 * Writes one transaction and its entries and moves the balances. The entries must sum to zero: checked here,
 * and again at commit by the deferred `billing_entries_balanced` trigger. Returns each account's new balance.
 */
export async function post(tx: BillingTx, posting: Posting): Promise<Map<string, number>> {
  const total = posting.entries.reduce((sum, entry) => sum + entry.amountCents, 0);
  if (posting.entries.length < 2 || total !== 0 || !posting.entries.every(isSafeCents)) {
    throw new EdgewiseError("internal", `unbalanced ${posting.kind} transaction (sum ${total})`);
  }
  // The transaction row first: for an order's second capture, it waits on the unique index before this
  // transaction takes any system account lock.
  const id = newId();
  await tx`
    INSERT INTO billing_transactions (id, kind, order_id, customer_id, message_id)
    VALUES (${id}, ${posting.kind}, ${posting.orderId}, ${posting.customerId}, ${posting.messageId})`;
  const rows = posting.entries.map((entry) => ({
    transaction_id: id,
    account_id: entry.accountId,
    amount_cents: entry.amountCents,
  }));
  await tx`INSERT INTO billing_entries ${tx(rows, "transaction_id", "account_id", "amount_cents")}`;
  const balances = new Map<string, number>();
  for (const entry of posting.entries) {
    const [row] = await tx`
      UPDATE billing_accounts SET balance_cents = balance_cents + ${entry.amountCents}, updated_at = now()
      WHERE id = ${entry.accountId} RETURNING balance_cents`;
    if (!row) throw new EdgewiseError("internal", `billing account ${entry.accountId} does not exist`);
    balances.set(entry.accountId, Number(row.balance_cents));
  }
  return balances;
}

function isSafeCents(entry: Entry): boolean {
  return Number.isSafeInteger(entry.amountCents);
}
