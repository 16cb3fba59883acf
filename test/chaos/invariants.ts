// API.md's four invariants, checked once the queue drains: the logic of test/commerce/invariants-bun.test.ts as a
// shared helper, plus the ledger (ledgerInvariants), one charge per confirmed order, the read model and the DLQ.
import type postgres from "postgres";
import { chargesByOrder, ledgerInvariants } from "../../actors/commerce/billing/index.ts";
import type { CommerceClient, OrderView } from "../commerce/client.ts";
import { uniqueName } from "../commerce/client.ts";

/** A small deterministic PRNG, so a failure can be replayed. */
export function prng(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

export interface Sku {
  sku: string;
  stocked: number;
  priceCents: number;
}
export interface Customer {
  id: string;
  funded: number;
}
export interface World {
  skus: Sku[];
  customers: Customer[];
}

export interface OrderPlan {
  /** The Idempotency-Key: a retry after a failed or hung POST reaches the same order. */
  key: string;
  customerId: string;
  items: Array<{ sku: string; quantity: number }>;
  /** `now`: cancelled right after the 202; `settled`: cancelled once seen confirmed. */
  cancel: "now" | "settled" | undefined;
}

/**
 * Stock and money scarce enough that every branch happens (confirmed, out of stock, insufficient funds, cancels)
 * for about `orders` orders: skus stocked from a fifth to three times their expected demand, customers funded
 * from a third to one and a half times their expected spending.
 */
export function makeWorld(name: string, orders: number, seed: number): { world: World; plans: OrderPlan[] } {
  const random = prng(seed);
  const skuCount = 8;
  const customerCount = 20;
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
  const prices = Array.from({ length: skuCount }, (_, i) => 150 + i * 275);
  const stockFactors = [0.2, 0.5, 0.8, 1.2, 2, 3, 0.35, 1.5];
  const fundFactors = [0.3, 0.5, 0.7, 0.9, 1.1, 1.5];
  // An order has 1-3 lines of 1-2 units: about 3 units, spread over the skus.
  const demandPerSku = (orders * 3) / skuCount;
  const skus = prices.map((priceCents, i) => ({
    sku: uniqueName(`${name}-sku${i}`),
    stocked: Math.max(2, Math.round(demandPerSku * (stockFactors[i] as number))),
    priceCents,
  }));
  const meanPrice = prices.reduce((a, b) => a + b, 0) / prices.length;
  const spendPerCustomer = (orders / customerCount) * 3 * meanPrice;
  const customers = Array.from({ length: customerCount }, (_, i) => ({
    id: uniqueName(`${name}-cust${i}`),
    funded: Math.max(500, Math.round(spendPerCustomer * (fundFactors[i % fundFactors.length] as number))),
  }));
  const runId = uniqueName(name);
  const plans = Array.from({ length: orders }, (_, n) => {
    const lines = new Map<string, number>();
    for (let count = 1 + Math.floor(random() * 3); count > 0; count--) {
      const { sku } = pick(skus);
      lines.set(sku, (lines.get(sku) ?? 0) + 1 + Math.floor(random() * 2));
    }
    const roll = random();
    return {
      key: `${runId}-${n}`,
      customerId: pick(customers).id,
      items: [...lines].map(([sku, quantity]) => ({ sku, quantity })),
      cancel: roll < 0.1 ? ("now" as const) : roll < 0.2 ? ("settled" as const) : undefined,
    };
  });
  return { world: { skus, customers }, plans };
}

/** Stocks the skus and funds the accounts (before any fault). */
export async function setUpWorld(api: CommerceClient, world: World): Promise<void> {
  for (const { sku, stocked, priceCents } of world.skus) await api.putSku(sku, stocked, priceCents);
  for (const { id, funded } of world.customers) await api.putAccount(id, funded);
}

/** Runs `fn` over `items`, at most `limit` at once. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>) {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i] as T);
      }
    }),
  );
  return results;
}

export interface InvariantReport {
  /** Every violation, human-readable; empty when the four invariants hold exactly. */
  violations: string[];
  outcomes: { confirmed: number; cancelled: number; outOfStock: number; insufficientFunds: number };
}

/**
 * The four invariants of API.md over the final order views (every accepted order, terminal):
 * 1. stock: available + reserved + sold = stocked, sold being what confirmed orders hold;
 * 2. balances: funded − captures + refunds, where only confirmed orders keep a charge;
 * 3. loyalty: the sum of floor(total / 100) over confirmed orders;
 * 4. nothing applied twice: billing's ledger balances entry by entry (ledgerInvariants), each confirmed order
 *    was captured exactly once for its total and never refunded, every other order's charges net to zero, and no
 *    order outside the accepted ones was charged.
 * `sql` is a pool on the node's schema.
 */
export async function checkInvariants(
  api: CommerceClient,
  world: World,
  final: OrderView[],
  sql: postgres.Sql,
): Promise<InvariantReport> {
  const violations: string[] = [];
  const confirmed = final.filter((order) => order.status === "confirmed");
  for (const { sku, stocked } of world.skus) {
    const sold = confirmed.reduce(
      (sum, order) => sum + order.items.filter((l) => l.sku === sku).reduce((s, l) => s + l.quantity, 0),
      0,
    );
    const view = await api.sku(sku);
    const total = view.available + view.reserved + sold;
    if (total !== stocked) {
      violations.push(
        `stock ${sku}: available ${view.available} + reserved ${view.reserved} + sold ${sold} = ${total} ≠ ${stocked}`,
      );
    }
  }
  for (const { id, funded } of world.customers) {
    const mine = confirmed.filter((order) => order.customerId === id);
    const spent = mine.reduce((sum, order) => sum + (order.totalCents ?? 0), 0);
    const points = mine.reduce((sum, order) => sum + Math.floor((order.totalCents ?? 0) / 100), 0);
    const [balance, actualPoints] = [await api.balance(id), await api.points(id)];
    if (balance !== funded - spent) {
      violations.push(
        `balance ${id}: ${balance} ≠ funded ${funded} − confirmed ${spent} = ${funded - spent}`,
      );
    }
    if (actualPoints !== points) violations.push(`loyalty ${id}: ${actualPoints} points ≠ ${points}`);
  }
  const ledger = await ledgerInvariants(sql);
  violations.push(...ledger.violations.map((v) => `ledger: ${v}`));
  const charges = await chargesByOrder(sql);
  const known = new Set(final.map((order) => order.orderId));
  for (const order of final) {
    const charge = charges.get(order.orderId) ?? { captures: 0, refunds: 0, captured: 0, refunded: 0 };
    if (order.status === "confirmed") {
      if (charge.captures !== 1 || charge.refunds !== 0 || charge.captured !== order.totalCents) {
        violations.push(
          `charge ${order.orderId} (confirmed, total ${order.totalCents}): ${charge.captures} capture(s) of ${charge.captured}, ${charge.refunds} refund(s)`,
        );
      }
    } else if (charge.captures > 1 || charge.refunds > 1 || charge.captured !== charge.refunded) {
      violations.push(
        `charge ${order.orderId} (${order.status}): ${charge.captures} capture(s) of ${charge.captured}, ${charge.refunds} refund(s) of ${charge.refunded}`,
      );
    }
  }
  const strangers = [...charges.keys()].filter((orderId) => !known.has(orderId));
  if (strangers.length > 0) {
    // Only this run's customers share the schema, so any other charged order was placed but never accepted.
    violations.push(
      `charges for ${strangers.length} order(s) never accepted: ${strangers.slice(0, 5).join(", ")}`,
    );
  }
  return {
    violations,
    outcomes: {
      confirmed: confirmed.length,
      cancelled: final.filter((order) => order.status === "cancelled").length,
      outOfStock: final.filter((order) => order.reason === "out_of_stock").length,
      insufficientFunds: final.filter((order) => order.reason === "insufficient_funds").length,
    },
  };
}

/** What is still queued in the node's schema: the broker's messages, its DLQ, and billing's outbox. */
export async function backlog(sql: postgres.Sql, { broker = true } = {}) {
  const [billing] = await sql`SELECT count(*)::int AS n FROM billing_outbox`;
  if (!broker)
    return { brokerQueued: 0, deadLettered: 0, billingOutbox: billing?.n as number, deliveryRetries: 0 };
  const [queued] = await sql`SELECT count(*)::int AS n FROM qstash_messages`;
  const [dead] = await sql`SELECT count(*)::int AS n FROM qstash_dlq`;
  const [retries] = await sql`SELECT count(*)::int AS n FROM qstash_events WHERE state = 'RETRY'`;
  return {
    brokerQueued: queued?.n as number,
    deadLettered: dead?.n as number,
    billingOutbox: billing?.n as number,
    /** Delivery attempts that failed and were scheduled again. */
    deliveryRetries: retries?.n as number,
  };
}

/** Dead letters, for evidence: where each was going and why it failed. */
export async function deadLetters(sql: postgres.Sql, limit = 10) {
  return await sql`
    SELECT message_id, url, attempts, response_status, last_error,
      left(convert_from(body, 'UTF8'), 300) AS body, left(convert_from(response_body, 'UTF8'), 300) AS response
    FROM qstash_dlq ORDER BY seq LIMIT ${limit}`;
}

/** Messages still in the broker, for evidence: where each was going, its state, attempts and timing. */
export async function brokerLeft(sql: postgres.Sql, limit = 5) {
  return await sql`
    SELECT id, url, state, attempts, last_status, left(last_error, 120) AS last_error,
      due_at - (extract(epoch FROM now()) * 1000)::bigint AS due_in_ms,
      (extract(epoch FROM now()) * 1000)::bigint - active_at AS active_for_ms
    FROM qstash_messages ORDER BY seq LIMIT ${limit}`;
}

/** Why deliveries failed, grouped by destination type, status and error: evidence for retries. */
export async function retryCauses(sql: postgres.Sql, limit = 10) {
  const rows = await sql`
    SELECT regexp_replace(regexp_replace(url, '^https?://[^/]+', ''), '/[^/]+$', '/*') AS path,
      response_status AS status, left(coalesce(error, ''), 160) AS error, count(*)::int AS n,
      min(time) AS first, max(time) AS last
    FROM qstash_events WHERE state = 'ERROR' GROUP BY 1, 2, 3 ORDER BY n DESC LIMIT ${limit}`;
  return rows.map((row) => ({
    path: row.path as string,
    status: row.status as number | null,
    error: row.error as string,
    n: row.n as number,
    first: Number(row.first),
    last: Number(row.last),
  }));
}

/** Accepted orders whose read-model row is missing or disagrees with the actor: lost read-side events. */
export async function readModelMismatches(sql: postgres.Sql, final: OrderView[]): Promise<string[]> {
  const rows =
    await sql`SELECT order_id, status FROM orders_read WHERE order_id = ANY(${final.map((o) => o.orderId)})`;
  const projected = new Map(rows.map((row) => [row.order_id as string, row.status as string]));
  return final
    .filter((order) => projected.get(order.orderId) !== order.status)
    .map(
      (order) =>
        `${order.orderId}: actor ${order.status}, read model ${projected.get(order.orderId) ?? "missing"}`,
    );
}

export type { OrderView };
