// Security suite, bola: customer A's token or API key cannot read or touch customer B's orders, account, loyalty or activity.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, type OrderView, uniqueName } from "../commerce/client.ts";
import { attackCategory } from "./report.ts";
import { type Credential, customerScopes, expectClosed, send } from "./support.ts";

const cases = attackCategory("bola");

let running: CommerceNode;
const a = uniqueName("cust-a");
const b = uniqueName("cust-b");
/** Never set anywhere: asking for it must not tell A whether it exists. */
const ghost = uniqueName("cust-ghost");
const sku = uniqueName("bola-sku");
const sharedIdempotencyKey = uniqueName("idem");
let bOrder: OrderView;
let credentials: Array<[string, Credential]>;

/** What B owns, read as admin: it must be the same after every attack. */
async function stateOfB() {
  const api = running.client;
  const orders = expectOk(
    await api.call<{ items: Array<{ orderId: string; status: string }> }>(
      "GET",
      `/v1/orders?customerId=${b}&limit=100`,
    ),
  );
  const order = await api.order(bOrder.orderId);
  return {
    order: { status: order.status, updatedAt: order.updatedAt, totalCents: order.totalCents },
    orders: orders.items.map((item) => `${item.orderId}:${item.status}`).sort(),
    balance: await api.balance(b),
    points: await api.points(b),
    stock: running.node.host?.inspect({ type: "inventory", key: sku }).state,
  };
}
let before: Awaited<ReturnType<typeof stateOfB>>;

beforeAll(async () => {
  running = await startCommerceNode("security_bola");
  const api = running.client;
  await api.putSku(sku, 100, 250);
  await api.putAccount(a, 1_000);
  await api.putAccount(b, 10_000);
  const placed = await api.place(b, [{ sku, quantity: 2 }], { "idempotency-key": sharedIdempotencyKey });
  bOrder = await api.settle(placed.body.orderId);
  expect(bOrder.status).toBe("confirmed");
  // The read model and loyalty have caught up, so the list and search cases below could see B's order.
  await eventually(async () => (await api.points(b)) === 5, "B's loyalty points");
  await eventually(async () => (await stateOfB()).orders.length === 1, "B's order in the read model");
  const key = expectOk(
    await api.call<{ key: string }>("POST", "/v1/api-keys", { body: { sub: a, scopes: customerScopes } }),
  );
  credentials = [
    ["JWT", { bearer: await api.token(a, customerScopes) }],
    ["API key", { apiKey: key.key }],
  ];
  before = await stateOfB();
}, 30_000);
afterAll(() => running?.stop());

describe("A against B's objects", () => {
  const refused = () =>
    [
      ["read B's order", "GET", `/v1/orders/${bOrder.orderId}`],
      ["cancel B's order", "POST", `/v1/orders/${bOrder.orderId}/cancel`],
      ["list B's orders", "GET", `/v1/orders?customerId=${b}`],
      ["search B's orders by sku", "GET", `/v1/orders?customerId=${b}&q=${sku}`],
      ["read B's account", "GET", `/v1/accounts/${b}`],
      ["set B's balance to 0", "PUT", `/v1/accounts/${b}`, { balanceCents: 0 }],
      ["raise B's balance", "PUT", `/v1/accounts/${b}`, { balanceCents: 1_000_000 }],
      ["read B's loyalty", "GET", `/v1/customers/${b}/loyalty`],
      ["place an order charged to B", "POST", "/v1/orders", { customerId: b, items: [{ sku, quantity: 1 }] }],
      [
        "replay B's idempotent order with B's key and body",
        "POST",
        "/v1/orders",
        { customerId: b, items: [{ sku, quantity: 2 }] },
        { "idempotency-key": sharedIdempotencyKey },
      ],
      ["read the activity of B's order", "GET", `/v1/activity?subject=${bOrder.orderId}`],
      ["read the activity log", "GET", "/v1/activity"],
      // Existence is not told: an account or loyalty record that does not exist is 403 too, never 404.
      ["read an account that was never set", "GET", `/v1/accounts/${ghost}`],
      ["set an account that was never set", "PUT", `/v1/accounts/${ghost}`, { balanceCents: 5 }],
      ["read loyalty of a customer never seen", "GET", `/v1/customers/${ghost}/loyalty`],
    ] as Array<[string, string, string, unknown?, Record<string, string>?]>;

  test("every object-level route answers 403 problem+json, leaks nothing of B's, and changes nothing", async () => {
    for (const [via, credential] of credentials) {
      for (const [what, method, path, body, headers] of refused()) {
        const answer = await send(running.node.url, method, path, {
          as: credential,
          ...(body !== undefined ? { body } : {}),
          ...(headers ? { headers } : {}),
        });
        // The path A chose may name B; the answer must add nothing of B's (its orders, balance, sku, points).
        const leaked = [bOrder.orderId, sku, "10000", "balanceCents", "points"].filter(
          (secret) => answer.text.includes(secret) && !path.includes(secret),
        );
        expectClosed(
          cases,
          `${via}: ${what}`,
          { status: answer.status, problem: answer.problem, leaked },
          { status: 403, problem: true, leaked: [] },
        );
      }
    }
    expect(await stateOfB()).toEqual(before);
    expect(await running.client.call("GET", `/v1/accounts/${ghost}`)).toMatchObject({ status: 404 });
  });

  test("lists and searches without a filter show only A's orders", async () => {
    const api = running.client;
    await api.place(a, [{ sku, quantity: 1 }]);
    for (const [via, credential] of credentials) {
      for (const query of [
        "",
        `?q=${bOrder.orderId}`,
        `?q=${b}`,
        `?q=${sku}`,
        "?status=confirmed&limit=100",
      ]) {
        const answer = await send(running.node.url, "GET", `/v1/orders${query}`, { as: credential });
        const items = (answer.json as { items?: Array<{ customerId: string }> }).items ?? [];
        expectClosed(
          cases,
          `${via}: GET /v1/orders${query} shows B's orders`,
          { status: answer.status, others: items.filter((item) => item.customerId !== a).length },
          { status: 200, others: 0 },
        );
      }
    }
  });

  test("A's Idempotency-Key equal to B's reaches a new order of A's, never B's", async () => {
    const [, credential] = credentials[0] as [string, Credential];
    const answer = await send(running.node.url, "POST", "/v1/orders", {
      as: credential,
      body: { customerId: a, items: [{ sku, quantity: 2 }] },
      headers: { "idempotency-key": sharedIdempotencyKey },
    });
    const orderId = (answer.json as { orderId?: string }).orderId;
    expectClosed(
      cases,
      "A reuses B's Idempotency-Key",
      { status: answer.status, sameOrderAsB: orderId === bOrder.orderId },
      { status: 202, sameOrderAsB: false },
    );
    if (orderId) await running.client.settle(orderId);
    expect(await stateOfB()).toMatchObject({
      order: before.order,
      balance: before.balance,
      points: before.points,
    });
  });

  test("B's own answers say no-store: no cache between B and the gateway can hand them to A", async () => {
    // A shared cache (a CDN, Varnish, a corporate proxy) knows Authorization as a credential but not X-API-Key: a
    // 200 without Cache-Control may be stored under its URL alone and served to the next caller of that URL, A.
    const key = expectOk(
      await running.client.call<{ key: string }>("POST", "/v1/api-keys", {
        body: { sub: b, scopes: customerScopes },
      }),
    );
    for (const path of [
      `/v1/accounts/${b}`,
      `/v1/orders/${bOrder.orderId}`,
      `/v1/orders?customerId=${b}`,
      `/v1/customers/${b}/loyalty`,
    ]) {
      const answer = await send(running.node.url, "GET", path, { as: { apiKey: key.key } });
      expectClosed(
        cases,
        `B's GET ${path} may be stored by a shared cache`,
        { status: answer.status, cacheControl: answer.headers.get("cache-control") },
        { status: 200, cacheControl: "no-store" },
      );
    }
  });

  test("encoded path tricks around the owner check are refused", async () => {
    const [, credential] = credentials[0] as [string, Credential];
    for (const path of [
      `/v1/accounts/${a}%2F..%2F${b}`,
      `/v1/accounts/${a}%2f..%2f..%2fv1%2faccounts%2f${b}`,
      `/v1/customers/${a}%2F..%2F${b}/loyalty`,
      `/v1/orders/${bOrder.orderId}%00`,
      `/v1/orders/${bOrder.orderId}%2Fcancel`,
    ]) {
      const answer = await send(running.node.url, "GET", path, { as: credential });
      expectClosed(
        cases,
        `GET ${path}`,
        {
          refused: answer.status >= 400 && answer.status < 500,
          problem: answer.problem,
          leaked: answer.text.includes("balanceCents"),
        },
        { refused: true, problem: true, leaked: false },
      );
    }
    expect(await stateOfB()).toMatchObject({
      order: before.order,
      balance: before.balance,
      points: before.points,
    });
  });
});
