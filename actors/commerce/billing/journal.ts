// The double-entry journal: lock a customer account, and post balanced transactions inside a caller's transaction.
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { newId } from "../../../shared/ids/index.ts";
import { type BillingTx, SystemAccounts } from "./schema.ts";

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
  /** Customer entries move their balance in this order; system entries are held back (see `SystemMoves`). */
  entries: Entry[];
}

const systemAccounts: ReadonlySet<string> = new Set(Object.values(SystemAccounts));

/**
 * Balance moves on the system accounts, held back to the end of the transaction. Every capture and refund
 * moves `system:revenue`, so its row lock serializes them all, from the UPDATE until commit: updated last, just
 * before COMMIT, it is held for one statement and the commit instead of for the rest of the transaction.
 * The journal entries are written at once, so the deferred balance check still sees them; lock order stays
 * customer row first, then system rows (in id order).
 */
export class SystemMoves {
  private readonly pending = new Map<string, number>();

  add(entry: Entry): void {
    this.pending.set(entry.accountId, (this.pending.get(entry.accountId) ?? 0) + entry.amountCents);
  }

  /** Applies the held-back moves, one UPDATE per account; the caller commits right after. */
  async apply(tx: BillingTx): Promise<void> {
    const moves = [...this.pending].filter(([, amount]) => amount !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
    this.pending.clear();
    for (const [accountId, amountCents] of moves) {
      const [row] = await tx`
        UPDATE billing_accounts SET balance_cents = balance_cents + ${amountCents}, updated_at = now()
        WHERE id = ${accountId} RETURNING id`;
      if (!row) throw new EdgewiseError("internal", `billing account ${accountId} does not exist`);
    }
  }
}

/** Locks a customer's account row for the rest of the transaction; undefined when there is none. */
export async function lockCustomer(tx: BillingTx, customerId: string): Promise<number | undefined> {
  const [row] = await tx`
    SELECT balance_cents FROM billing_accounts WHERE id = ${customerId} AND kind = 'customer' FOR UPDATE`;
  return row ? Number(row.balance_cents) : undefined;
}

/**
 * Writes one transaction and its entries and moves the balances: customer accounts' now, system accounts'
 * through `system`, which the caller applies last. The entries must sum to zero: checked here, and again at
 * commit by the deferred `billing_entries_balanced` trigger. Returns each customer account's new balance.
 */
export async function post(
  tx: BillingTx,
  posting: Posting,
  system: SystemMoves,
): Promise<Map<string, number>> {
  const total = posting.entries.reduce((sum, entry) => sum + entry.amountCents, 0);
  if (posting.entries.length < 2 || total !== 0 || !posting.entries.every(isSafeCents)) {
    throw new EdgewiseError("internal", `unbalanced ${posting.kind} transaction (sum ${total})`);
  }
  // The transaction row first: for an order's second capture, it waits on the unique index before this
  // transaction writes anything else.
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
    if (systemAccounts.has(entry.accountId)) {
      system.add(entry);
      continue;
    }
    const [row] = await tx`
      UPDATE billing_accounts SET balance_cents = balance_cents + ${entry.amountCents}, updated_at = now()
      WHERE id = ${entry.accountId} RETURNING balance_cents`;
    if (!row) throw new EdgewiseError("internal", `billing account ${entry.accountId} does not exist`);
    const balance = Number(row.balance_cents);
    // Postgres's bigint holds more than a JavaScript number does exactly. A balance past the largest safe integer
    // would be read back rounded and fail every message that carries it, so the transaction rolls back instead.
    if (!Number.isSafeInteger(balance)) {
      throw new EdgewiseError(
        "conflict",
        `a ${posting.kind} of ${entry.amountCents} cents would take account ${entry.accountId} over the largest balance (${Number.MAX_SAFE_INTEGER} cents); nothing was applied`,
      );
    }
    balances.set(entry.accountId, balance);
  }
  return balances;
}

function isSafeCents(entry: Entry): boolean {
  return Number.isSafeInteger(entry.amountCents);
}
