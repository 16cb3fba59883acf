// A balance set leaves room for the refunds still possible: every cancel's refund lands, none dead-letters (a node).
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { uniqueName } from "./client.ts";

const most = Number.MAX_SAFE_INTEGER;
let running: CommerceNode;
beforeAll(async () => {
  running = await startCommerceNode("refund_room", { EDGEWISE_DELIVERY_RETRIES: "2" });
}, 30_000);
afterAll(() => running?.stop());

test("a raise past what a refund leaves room for is 409, and the order cancelled after refunds exactly", async () => {
  const api = running.client;
  const [sku, customer] = [uniqueName("room-sku"), uniqueName("room-cust")];
  await api.putSku(sku, 10, 100);
  await api.putAccount(customer, 1_000);
  const placed = await api.place(customer, [{ sku, quantity: 1 }]);
  expect((await api.settle(placed.body.orderId)).status).toBe("confirmed");
  // Before, this was 200; cancelling the order then asked for a refund past the largest balance, which the ledger
  // refused on every delivery (dead-lettered): the order cancelled, its 100 cents never back.
  const raise = await api.call("PUT", `/v1/accounts/${customer}`, { body: { balanceCents: most } });
  expect(raise.status).toBe(409);
  expect(raise.headers.get("content-type")).toContain("application/problem+json");
  expect(raise.body).toMatchObject({ code: "conflict" });
  expect(String(raise.body.detail)).toContain(`at most ${most - 100}`);
  expect(await api.balance(customer)).toBe(900);
  await api.putAccount(customer, most - 100);
  expect((await api.cancel(placed.body.orderId)).status).toBe(202);
  await api.settle(placed.body.orderId, (order) => order.refundedAt !== undefined);
  expect(await api.balance(customer)).toBe(most);
  // Lowering is always allowed.
  await api.putAccount(customer, 5);
});

test("one customer's unrefunded captures stay within the largest balance, so its loyalty points stay within MAX_SAFE_INTEGER", async () => {
  const api = running.client;
  const [sku, customer] = [uniqueName("dear-sku"), uniqueName("dear-cust")];
  await api.putSku(sku, 10, most);
  await api.putAccount(customer, most);
  const placed = await api.place(customer, [{ sku, quantity: 1 }]);
  expect((await api.settle(placed.body.orderId)).status).toBe("confirmed");
  // Before, the balance could be put back to the largest one before each such order: after 100 of them the 101st
  // credit took the loyalty state past MAX_SAFE_INTEGER (state.invalid on every delivery, dead-lettered).
  expect((await api.call("PUT", `/v1/accounts/${customer}`, { body: { balanceCents: 1 } })).status).toBe(409);
  expect(await api.balance(customer)).toBe(0);
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    const [dead] = await sql.unsafe(`SELECT count(*)::int AS n FROM "${running.schema}".qstash_dlq`);
    expect(dead?.n).toBe(0);
  } finally {
    await sql.end();
  }
});
