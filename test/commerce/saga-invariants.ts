// The end invariants of one saga schedule, from the actors' state and the Postgres ledger, as a list of violations.
import { chargesByOrder, ledgerInvariants } from "../../actors/commerce/billing/index.ts";
import type { BillingTestDatabase } from "../../actors/commerce/billing/testing.ts";
import { pointsFor } from "../../actors/commerce/loyalty.ts";
import type { OrderView } from "../../actors/commerce/order.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { SagaWorld } from "./saga-world.ts";

/** What the test did, and so what the world must add up to. */
export interface SagaModel {
  /** Every id of this schedule starts with it (the Postgres schema is shared by the schedules). */
  prefix: string;
  skus: string[];
  customers: string[];
  /** Units each sku was given: `Put` changes (as `Put` answered them) plus restocks handed to the queue. */
  stocked: Map<string, number>;
  /** Money each customer was given: the differences `putAccount` answered. */
  funded: Map<string, number>;
  orders: string[];
}

/** Stock available + reserved + sold adds up to its own `stocked`, whatever is in flight. */
export function stockViolations(world: SagaWorld, model: SagaModel): string[] {
  return model.skus.flatMap((sku) => {
    const { available, reserved, sold, stocked } = world.stock(sku);
    return available + reserved + sold === stocked
      ? []
      : [`stock ${sku}: available ${available} + reserved ${reserved} + sold ${sold} ≠ stocked ${stocked}`];
  });
}

/** Once the queue drained: every order terminal, stock, money and points exact, each charge once. */
export async function endViolations(
  world: SagaWorld,
  db: BillingTestDatabase,
  model: SagaModel,
): Promise<string[]> {
  const violations = [
    ...world.failures.map((failure) => `failed: ${failure}`),
    ...stockViolations(world, model),
  ];
  const views: OrderView[] = [];
  for (const orderId of model.orders) views.push(await world.order(orderId));
  for (const view of views.filter((view) => !["confirmed", "rejected", "cancelled"].includes(view.status)))
    violations.push(`order ${view.orderId} ended ${view.status}`);
  const confirmed = views.filter((view) => view.status === "confirmed");
  for (const view of confirmed) {
    const total = view.items.reduce(
      (sum, item) => sum + item.quantity * (item.unitPriceCents ?? Number.NaN),
      0,
    );
    if (total !== view.totalCents)
      violations.push(`order ${view.orderId}: total ${view.totalCents} ≠ lines ${total}`);
  }

  for (const sku of model.skus) {
    const state = world.stock(sku);
    const sold = confirmed.reduce(
      (sum, view) =>
        sum + view.items.filter((item) => item.sku === sku).reduce((s, item) => s + item.quantity, 0),
      0,
    );
    const expected = model.stocked.get(sku) ?? 0;
    if (state.stocked !== expected)
      violations.push(`stock ${sku}: stocked ${state.stocked} ≠ given ${expected}`);
    if (state.reserved !== 0) violations.push(`stock ${sku}: ${state.reserved} still reserved`);
    if (state.sold !== sold) violations.push(`stock ${sku}: sold ${state.sold} ≠ confirmed ${sold}`);
    for (const view of views) {
      const line = view.items.find((item) => item.sku === sku);
      const record = world.stockRecord(sku, view.orderId);
      if (!line) continue;
      const ok =
        view.status === "confirmed"
          ? record?.stage === "sold" && record.quantity === line.quantity
          : record === undefined || ["refused", "released", "returned"].includes(record.stage);
      if (!ok)
        violations.push(
          `stock ${sku}: order ${view.orderId} (${view.status}) recorded ${JSON.stringify(record)}`,
        );
    }
  }

  for (const customerId of model.customers) {
    const mine = confirmed.filter((view) => view.customerId === customerId);
    const spent = mine.reduce((sum, view) => sum + (view.totalCents ?? 0), 0);
    const balance = await balanceOf(db, customerId);
    const funded = model.funded.get(customerId) ?? 0;
    if (balance !== funded - spent)
      violations.push(`balance ${customerId}: ${balance} ≠ funded ${funded} − confirmed ${spent}`);
    const points = await world.points(customerId);
    const earned = mine.reduce((sum, view) => sum + pointsFor(view.totalCents ?? 0), 0);
    if (points !== earned) violations.push(`loyalty ${customerId}: ${points} points ≠ ${earned}`);
  }

  violations.push(...(await ledgerInvariants(db.sql)).violations.map((violation) => `ledger: ${violation}`));
  const charges = await chargesByOrder(db.sql);
  const byId = new Map(views.map((view) => [view.orderId, view]));
  for (const [orderId, charge] of charges) {
    if (!orderId.startsWith(`${model.prefix}-`)) continue;
    const view = byId.get(orderId);
    const said = `order ${orderId} (${view?.status ?? "never placed"}): ${charge.captures} capture(s) of ${charge.captured}, ${charge.refunds} refund(s) of ${charge.refunded}`;
    if (!view) violations.push(said);
    else if (view.status === "confirmed") {
      if (charge.captures !== 1 || charge.refunds !== 0 || charge.captured !== view.totalCents)
        violations.push(said);
    } else if (
      charge.captures > 1 ||
      charge.refunds !== charge.captures ||
      charge.refunded !== charge.captured
    )
      violations.push(said);
    else if (charge.refunds === 1 && view.refundedAt === undefined) violations.push(`${said}, no refundedAt`);
  }
  for (const view of confirmed)
    if (!charges.has(view.orderId)) violations.push(`order ${view.orderId} confirmed with no capture`);
  tally(views, charges);
  return violations;
}

/** How often each ending happened over the schedules, printed at the end: evidence that every branch ran. */
export const endings: Record<string, number> = {};

function tally(views: OrderView[], charges: Awaited<ReturnType<typeof chargesByOrder>>): void {
  for (const view of views) {
    const charge = charges.get(view.orderId);
    const ending = [
      view.status,
      view.reason,
      charge?.refunds ? "refunded" : charge?.captures ? "captured" : undefined,
    ]
      .filter(Boolean)
      .join(" ");
    endings[ending] = (endings[ending] ?? 0) + 1;
  }
}

async function balanceOf(db: BillingTestDatabase, customerId: string): Promise<number> {
  try {
    return (await db.ledger.getAccount(customerId)).balanceCents;
  } catch (error) {
    if (error instanceof EdgewiseError && error.code === "not_found") return 0;
    throw error;
  }
}
