// Ledger invariants, checked from the tables: balanced transactions, balances that match the journal, one charge per order.
import type { BillingSql, BillingTx } from "./schema.ts";

export interface LedgerReport {
  /** Human-readable violations; empty when every invariant holds. */
  violations: string[];
  /** Totals over customer accounts, for assertions such as "captures never exceed funding". */
  totals: { fundingCents: number; capturesCents: number; refundsCents: number; balanceCents: number };
}

/**
 * Checks, in one read-only snapshot: every transaction has entries summing to zero; every account's balance
 * equals the sum of its entries, so a customer's is funding − captures + refunds; no customer balance is
 * negative; an order has at most one capture and one refund, and a refund only after a capture, of the same
 * amount.
 */
export async function ledgerInvariants(sql: BillingSql): Promise<LedgerReport> {
  return (await sql.begin("isolation level repeatable read read only", async (tx) => {
    const violations: string[] = [];
    const unbalanced = await tx`
      SELECT t.id, coalesce(sum(e.amount_cents), 0)::text AS total, count(e.account_id)::int AS n
      FROM billing_transactions t LEFT JOIN billing_entries e ON e.transaction_id = t.id
      GROUP BY t.id HAVING coalesce(sum(e.amount_cents), 0) <> 0 OR count(e.account_id) < 2`;
    for (const row of unbalanced) {
      violations.push(`transaction ${row.id}: ${row.n} entries summing to ${row.total}`);
    }
    const accounts = await tx`
      SELECT a.id, a.kind, a.balance_cents::text AS balance,
        coalesce(sum(e.amount_cents) FILTER (WHERE t.kind = 'funding'), 0)::text AS funding,
        coalesce(-sum(e.amount_cents) FILTER (WHERE t.kind = 'capture'), 0)::text AS captures,
        coalesce(sum(e.amount_cents) FILTER (WHERE t.kind = 'refund'), 0)::text AS refunds
      FROM billing_accounts a
      LEFT JOIN billing_entries e ON e.account_id = a.id
      LEFT JOIN billing_transactions t ON t.id = e.transaction_id
      GROUP BY a.id, a.kind, a.balance_cents`;
    const totals = { fundingCents: 0, capturesCents: 0, refundsCents: 0, balanceCents: 0 };
    for (const row of accounts) {
      // Exact: a system account's balance may be past what a number holds exactly (schema.ts).
      const [balance, funding, captures, refunds] = [row.balance, row.funding, row.captures, row.refunds].map(
        Number,
      ) as [number, number, number, number];
      if (BigInt(row.balance) !== BigInt(row.funding) - BigInt(row.captures) + BigInt(row.refunds)) {
        violations.push(
          `account ${row.id}: balance ${balance} ≠ funding ${funding} − captures ${captures} + refunds ${refunds}`,
        );
      }
      if (row.kind !== "customer") continue;
      if (balance < 0) violations.push(`customer ${row.id}: negative balance ${balance}`);
      totals.fundingCents += funding;
      totals.capturesCents += captures;
      totals.refundsCents += refunds;
      totals.balanceCents += balance;
    }
    for (const [orderId, row] of await chargesByOrder(tx)) {
      if (row.captures > 1 || row.refunds > 1) {
        violations.push(`order ${orderId}: ${row.captures} captures, ${row.refunds} refunds`);
      } else if (row.refunds === 1 && (row.captures === 0 || row.captured !== row.refunded)) {
        violations.push(`order ${orderId}: refunded ${row.refunded} of a capture of ${row.captured}`);
      }
    }
    return { violations, totals };
  })) as LedgerReport;
}

/** Captures, refunds and their amounts per order, for the orders that have any. */
export async function chargesByOrder(
  sql: BillingSql | BillingTx,
): Promise<Map<string, { captures: number; refunds: number; captured: number; refunded: number }>> {
  const rows = await sql`
    SELECT t.order_id,
      count(*) FILTER (WHERE t.kind = 'capture')::int AS captures,
      count(*) FILTER (WHERE t.kind = 'refund')::int AS refunds,
      coalesce(-sum(e.amount_cents) FILTER (WHERE t.kind = 'capture'), 0)::text AS captured,
      coalesce(sum(e.amount_cents) FILTER (WHERE t.kind = 'refund'), 0)::text AS refunded
    FROM billing_transactions t
    JOIN billing_entries e ON e.transaction_id = t.id AND e.account_id = t.customer_id
    WHERE t.order_id IS NOT NULL GROUP BY t.order_id`;
  return new Map(
    rows.map((row) => [
      row.order_id as string,
      {
        captures: row.captures as number,
        refunds: row.refunds as number,
        captured: Number(row.captured),
        refunded: Number(row.refunded),
      },
    ]),
  );
}
