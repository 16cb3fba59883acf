// 200 concurrent orders against scarce stock and money: once the queue drains, API.md's four invariants hold exactly.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ledgerInvariants } from "../../actors/commerce/billing/index.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { eventually, type OrderView, uniqueName } from "./client.ts";

let running: CommerceNode;
beforeAll(async () => {
  running = await startCommerceNode("commerce_invariants");
}, 30_000);
afterAll(() => running?.stop());

/** A small deterministic PRNG, so a failure can be replayed. */
function prng(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

test("200 concurrent orders: every order terminal, stock, balances and points exact", async () => {
  const api = running.client;
  const random = prng(20261125);
  const skus = Array.from({ length: 6 }, (_, i) => ({
    sku: uniqueName(`sku${i}`),
    stocked: 12 + i * 5,
    priceCents: 150 + i * 275,
  }));
  const customers = Array.from({ length: 12 }, (_, i) => ({
    id: uniqueName(`cust${i}`),
    funded: 1_500 + i * 700,
  }));
  for (const { sku, stocked, priceCents } of skus) await api.putSku(sku, stocked, priceCents);
  for (const { id, funded } of customers) await api.putAccount(id, funded);

  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
  const plans = Array.from({ length: 200 }, () => {
    const lines = new Map<string, number>();
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
      const { sku } = pick(skus);
      lines.set(sku, (lines.get(sku) ?? 0) + 1 + Math.floor(random() * 2));
    }
    return {
      customerId: pick(customers).id,
      items: [...lines].map(([sku, quantity]) => ({ sku, quantity })),
      cancel: random() < 0.15 ? ("now" as const) : random() < 0.2 ? ("settled" as const) : undefined,
    };
  });

  const orderIds = await Promise.all(
    plans.map(async (plan) => {
      const placed = await api.place(plan.customerId, plan.items);
      expect(placed.status).toBe(202);
      if (plan.cancel === "now") expect((await api.cancel(placed.body.orderId)).status).toBe(202);
      return placed.body.orderId;
    }),
  );
  const settled = await Promise.all(orderIds.map((orderId) => api.settle(orderId, undefined, 60_000)));
  await Promise.all(
    settled.map(async (order, i) => {
      if (plans[i]?.cancel === "settled") expect((await api.cancel(order.orderId)).status).toBe(202);
    }),
  );
  // The queue drains: every cancel has settled, nothing is reserved any more.
  let final: OrderView[] = [];
  await eventually(
    async () => {
      final = await Promise.all(orderIds.map((orderId) => api.order(orderId)));
      const cancelsDone = final.every(
        (order, i) => plans[i]?.cancel === undefined || order.status !== "confirmed",
      );
      const reserved = await Promise.all(skus.map(async ({ sku }) => (await api.sku(sku)).reserved));
      return (
        cancelsDone && final.every((order) => order.status !== "pending") && reserved.every((r) => r === 0)
      );
    },
    "every order terminal and no reservation left",
    60_000,
  );
  const byStatus = (status: string) => final.filter((order) => order.status === status);
  // The scenario really exercised every branch.
  const outcomes = {
    confirmed: byStatus("confirmed").length,
    cancelled: byStatus("cancelled").length,
    outOfStock: final.filter((order) => order.reason === "out_of_stock").length,
    insufficientFunds: final.filter((order) => order.reason === "insufficient_funds").length,
  };
  console.error(`200 concurrent orders: ${JSON.stringify(outcomes)}`);
  for (const count of Object.values(outcomes)) expect(count).toBeGreaterThanOrEqual(3);

  const confirmed = byStatus("confirmed");
  const expectations = async () => {
    // 1. Stock: available + reserved + sold equals what was set; sold is what confirmed orders hold.
    for (const { sku, stocked } of skus) {
      const sold = confirmed.reduce(
        (sum, order) =>
          sum + order.items.filter((line) => line.sku === sku).reduce((s, l) => s + l.quantity, 0),
        0,
      );
      const view = await api.sku(sku);
      expect({ sku, total: view.available + view.reserved + sold }).toEqual({ sku, total: stocked });
    }
    // 2. Balances: what was set, minus captures, plus refunds: only confirmed orders keep their charge.
    // 3. Loyalty: the sum over confirmed orders.
    for (const { id, funded } of customers) {
      const mine = confirmed.filter((order) => order.customerId === id);
      const spent = mine.reduce((sum, order) => sum + (order.totalCents ?? 0), 0);
      const points = mine.reduce((sum, order) => sum + Math.floor((order.totalCents ?? 0) / 100), 0);
      expect({ id, balance: await api.balance(id), points: await api.points(id) }).toEqual({
        id,
        balance: funded - spent,
        points,
      });
    }
  };
  await eventually(
    async () =>
      expectations().then(
        () => true,
        () => false,
      ),
    "the invariants to hold",
    30_000,
  );
  // 4. Nothing applied twice, and it stays so: the ledger balances entry by entry, and a pause changes nothing.
  await Bun.sleep(500);
  await expectations();
  const ledger = await ledgerInvariants(running.node.sql);
  expect(ledger.violations).toEqual([]);
}, 150_000);
