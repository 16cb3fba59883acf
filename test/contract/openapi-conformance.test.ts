// /openapi.json against a real node on embedded defaults: each route driven through its outcomes, each answer checked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import { Webhook } from "standardwebhooks";
import type { EdgewiseNode } from "../../deploy/bun/node.ts";
import { startLocalNode } from "../support/local-node.ts";
import { rawExchange } from "../support/raw-http.ts";
import { type Caller, type ContractAnswer, ContractClient } from "./contract-client.ts";
import { type OpenApiDocument, OpenApiChecker } from "./openapi-checker.ts";

const jwtSecret = `contract-${crypto.randomUUID()}-${crypto.randomUUID()}`;
const supplierSecret = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))))}`;
/**
 * Per subject and route class, in an hour's window: low enough that a 429 costs few requests, high enough for every
 * other case (each admin call is a subject of its own). The windows are fixed, aligned to the hour: see the 429 case.
 */
const rateLimit = 40;
const run = crypto.randomUUID().slice(0, 8);
const id = (name: string) => `ct-${run}-${name}`;

const metricsToken = `metrics-${crypto.randomUUID()}`;
const dataDirs: string[] = [];
/** The node most cases run on, its document and its client. */
let node: EdgewiseNode;
let document: OpenApiDocument;
let client: ContractClient;
/**
 * A second node, for the answers of a node in trouble: Redis on a port nothing listens on and a rate limit that
 * refuses when it cannot count (every limited route is 503), a short request timeout (504), a shutdown delay during
 * which /readyz says draining (503), and METRICS_TOKEN (so /metrics documents and answers 401 and 403). Its own
 * document, as METRICS_TOKEN changes it.
 */
let failing: EdgewiseNode;
let failingClient: ContractClient;
/** A subscription to order.rejected at a URL that refuses connections (made by the `limit` case). */
let rejectedHook: string;

/** A node on embedded defaults (PGlite, the embedded broker, Redis in memory) in a data dir of its own. */
async function start(env: Record<string, string>): Promise<[EdgewiseNode, ContractClient]> {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-contract-"));
  dataDirs.push(dataDir);
  const started = await startLocalNode(dataDir, {
    JWT_SECRET: jwtSecret,
    INBOUND_WEBHOOK_SECRETS: `supplier=${supplierSecret}`,
    ...env,
  });
  const spec = (await (await fetch(`${started.url}/openapi.json`)).json()) as OpenApiDocument;
  const contract = new ContractClient(started.url, jwtSecret, new OpenApiChecker(spec));
  await contract.record("GET", "/openapi.json", await fetch(`${started.url}/openapi.json`));
  return [started, contract];
}

beforeAll(async () => {
  [[node, client], [failing, failingClient]] = await Promise.all([
    start({ WEBHOOKS_ALLOW_PRIVATE: "1", RATE_LIMIT: `${rateLimit}/1h` }),
    start({
      REDIS_URL: "redis://127.0.0.1:1",
      RATE_LIMIT_ON_REDIS_FAILURE: "closed",
      REQUEST_TIMEOUT: "300ms",
      EDGEWISE_SHUTDOWN_DELAY: "2s",
      METRICS_TOKEN: metricsToken,
    }),
  ]);
  document = client.checker.document;
}, 60_000);

afterAll(async () => {
  await Promise.all([node?.stop(), failing?.stop()]);
  for (const dataDir of dataDirs) rmSync(dataDir, { recursive: true, force: true });
});

/** Each answer so far conformed; a failure lists every departure at once. */
function expectConformance() {
  expect(client.violations.splice(0)).toEqual([]);
}

const customer = (sub: string, ...scopes: string[]): Caller => ({ sub, scopes });
const signed = (webhookId: string, body: string, secret = supplierSecret) => ({
  "content-type": "application/json",
  "webhook-id": webhookId,
  "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
  "webhook-signature": new Webhook(secret).sign(webhookId, new Date(), body),
});

/** Polls an order until it leaves `pending` (the saga runs on the embedded broker). */
async function settled(
  orderId: string,
  done = (status: string) => status !== "pending",
): Promise<ContractAnswer> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const answer = await client.call("GET", "/v1/orders/{orderId}", { params: { orderId } });
    if (done((answer.json as { status: string }).status) || Date.now() > deadline) return answer;
    await Bun.sleep(50);
  }
}

describe("/openapi.json", () => {
  test("is a valid OpenAPI 3.1 document", async () => {
    expect(document.openapi).toBe("3.1.0");
    await SwaggerParser.validate(structuredClone(document) as never);
  });

  test("declares the headers that API.md and the README promise, so the answers are held to them", () => {
    const headersOf = (method: string, path: string, status: string) => {
      const responses = client.checker.operation(method, path)?.responses as Record<
        string,
        { headers?: object }
      >;
      const declared = (responses?.[status]?.headers ?? {}) as Record<string, { required?: boolean }>;
      return Object.entries(declared)
        .filter(([, header]) => header.required)
        .map(([name]) => name)
        .sort();
    };
    const rateLimited = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"];
    expect(headersOf("POST", "/v1/orders", "202")).toEqual(["Location", ...rateLimited].sort());
    expect(headersOf("GET", "/v1/orders/{orderId}", "200")).toEqual([...rateLimited, "X-Cache"].sort());
    expect(headersOf("GET", "/v1/inventory/{sku}", "200")).toEqual([...rateLimited, "X-Cache"].sort());
    for (const [method, path, operation] of operations()) {
      if (isPublic(operation) || path === "/metrics") continue;
      const where = `${method} ${path}`;
      expect({ where, 401: headersOf(method, path, "401") }).toEqual({ where, 401: ["WWW-Authenticate"] });
      expect({ where, 429: headersOf(method, path, "429") }).toEqual({
        where,
        429: ["Retry-After", ...rateLimited].sort(),
      });
    }
    expect(headersOf("POST", "/webhooks/inbound/{source}", "429")).toEqual(
      ["Retry-After", ...rateLimited].sort(),
    );
  });

  test("public routes answer as documented", async () => {
    await client.call("GET", "/healthz", { as: null, status: 200 });
    await client.call("GET", "/readyz", { as: null, status: 200 });
    await client.call("GET", "/metrics", { as: null, status: 200 });
    // A credential does not matter on them, good or bad.
    await client.call("GET", "/healthz", {
      as: null,
      headers: { authorization: "Bearer nope" },
      status: 200,
    });
    await client.call("GET", "/openapi.json", { as: null, headers: { "x-api-key": "ek_nope" }, status: 200 });
    expectConformance();
  });
});

describe("the commerce API", () => {
  test("inventory, accounts and loyalty: success, 400, 401, 403, 404", async () => {
    const sku = id("widget");
    const ada = id("ada");
    const eve = id("eve");
    const put = { available: 10, priceCents: 250 };
    await client.call("PUT", "/v1/inventory/{sku}", { params: { sku }, body: put, status: 200 });
    await client.call("GET", "/v1/inventory/{sku}", { params: { sku }, status: 200 });
    await client.call("GET", "/v1/inventory/{sku}", { params: { sku: id("never-set") }, status: 404 });
    await client.call("GET", "/v1/inventory/{sku}", { params: { sku: "not a sku!" }, status: 400 });
    await client.call("PUT", "/v1/inventory/{sku}", {
      params: { sku },
      body: { ...put, available: -1 },
      status: 400,
    });
    await client.call("PUT", "/v1/inventory/{sku}", {
      params: { sku },
      body: put,
      as: customer(ada, "inventory:read"),
      status: 403,
    });
    await client.call("GET", "/v1/inventory/{sku}", { params: { sku }, as: null, status: 401 });
    const badToken = { as: null, headers: { authorization: "Bearer not-a-jwt" }, status: 401 } as const;
    await client.call("GET", "/v1/inventory/{sku}", { params: { sku }, ...badToken });

    const account = { params: { customerId: ada } };
    await client.call("PUT", "/v1/accounts/{customerId}", {
      ...account,
      body: { balanceCents: 10_000 },
      status: 200,
    });
    await client.call("GET", "/v1/accounts/{customerId}", { ...account, status: 200 });
    await client.call("GET", "/v1/accounts/{customerId}", {
      ...account,
      as: customer(ada, "billing:read"),
      status: 200,
    });
    await client.call("GET", "/v1/accounts/{customerId}", {
      params: { customerId: id("nobody") },
      status: 404,
    });
    await client.call("GET", "/v1/accounts/{customerId}", {
      ...account,
      as: customer(eve, "billing:read"),
      status: 403,
    });
    await client.call("PUT", "/v1/accounts/{customerId}", {
      ...account,
      body: { balanceCents: 1.5 },
      status: 400,
    });
    await client.call("PUT", "/v1/accounts/{customerId}", { ...account, body: {}, as: null, status: 401 });

    const loyalty = "/v1/customers/{customerId}/loyalty";
    await client.call("GET", loyalty, { ...account, status: 200 });
    await client.call("GET", loyalty, { ...account, as: customer(eve, "loyalty:read"), status: 403 });
    await client.call("GET", loyalty, { params: { customerId: "system:bot" }, status: 400 });
    await client.call("GET", loyalty, { ...account, ...badToken });
    expectConformance();
  });

  test("orders: place, read, cancel, list and page; 400, 401, 403, 404, 409, 422", async () => {
    const sku = id("gadget");
    const bob = id("bob");
    const eve = id("eve2");
    const bobWrites = customer(bob, "orders:write", "orders:read");
    await client.call("PUT", "/v1/inventory/{sku}", {
      params: { sku },
      body: { available: 100, priceCents: 500 },
      status: 200,
    });
    // The most a balance may be: a capture not yet refunded then makes the same set a 409.
    const most = Number.MAX_SAFE_INTEGER;
    await client.call("PUT", "/v1/accounts/{customerId}", {
      params: { customerId: bob },
      body: { balanceCents: most },
      status: 200,
    });
    const order = { customerId: bob, items: [{ sku, quantity: 2 }] };
    const placed = await client.call("POST", "/v1/orders", { body: order, as: bobWrites, status: 202 });
    const orderId = (placed.json as { orderId: string }).orderId;
    expect(placed.headers.get("location")).toBe(`/v1/orders/${orderId}`);
    const confirmed = await settled(orderId);
    expect((confirmed.json as { status: string }).status).toBe("confirmed");
    await client.call("PUT", "/v1/accounts/{customerId}", {
      params: { customerId: bob },
      body: { balanceCents: most },
      status: 409,
    });
    await client.call("GET", "/v1/orders/{orderId}", { params: { orderId }, as: bobWrites, status: 200 });
    await client.call("GET", "/v1/orders/{orderId}", {
      params: { orderId },
      as: customer(eve, "orders:read"),
      status: 403,
    });
    await client.call("GET", "/v1/orders/{orderId}", { params: { orderId: id("no-order") }, status: 404 });
    // Whether an order exists is told only to a caller that may read orders.
    await client.call("GET", "/v1/orders/{orderId}", {
      params: { orderId: id("no-order") },
      as: customer(bob, "billing:read"),
      status: 403,
    });
    await client.call("GET", "/v1/orders/{orderId}", { params: { orderId: "a b" }, status: 400 });

    // Idempotency-Key: the same body is the same order; another body is 422; a malformed key is 400.
    const keyed = { headers: { "idempotency-key": id("key-1") }, as: bobWrites };
    const first = await client.call("POST", "/v1/orders", { ...keyed, body: order, status: 202 });
    const again = await client.call("POST", "/v1/orders", { ...keyed, body: order, status: 202 });
    expect((again.json as { orderId: string }).orderId).toBe((first.json as { orderId: string }).orderId);
    await client.call("POST", "/v1/orders", {
      ...keyed,
      body: { ...order, items: [{ sku, quantity: 3 }] },
      status: 422,
    });
    await client.call("POST", "/v1/orders", {
      headers: { "idempotency-key": "" },
      as: bobWrites,
      body: order,
      status: 400,
    });
    await client.call("POST", "/v1/orders", { body: { ...order, items: [] }, as: bobWrites, status: 400 });
    await client.call("POST", "/v1/orders", {
      body: { ...order, customerId: eve },
      as: bobWrites,
      status: 403,
    });
    await client.call("POST", "/v1/orders", { body: order, as: customer(bob, "orders:read"), status: 403 });
    await client.call("POST", "/v1/orders", { body: order, as: null, status: 401 });

    // A rejected order carries its reason; cancelling it changes nothing (202).
    const poor = id("poor");
    await client.call("PUT", "/v1/accounts/{customerId}", {
      params: { customerId: poor },
      body: { balanceCents: 1 },
      status: 200,
    });
    const refused = await client.call("POST", "/v1/orders", {
      body: { customerId: poor, items: [{ sku, quantity: 1 }] },
      status: 202,
    });
    const refusedId = (refused.json as { orderId: string }).orderId;
    const rejected = await settled(refusedId);
    expect(rejected.json).toMatchObject({ status: "rejected", reason: "insufficient_funds" });
    await client.call("POST", "/v1/orders/{orderId}/cancel", { params: { orderId: refusedId }, status: 202 });

    await client.call("POST", "/v1/orders/{orderId}/cancel", {
      params: { orderId },
      as: customer(eve, "orders:write"),
      status: 403,
    });
    await client.call("POST", "/v1/orders/{orderId}/cancel", {
      params: { orderId: id("no-order") },
      status: 404,
    });
    await client.call("POST", "/v1/orders/{orderId}/cancel", {
      params: { orderId },
      as: bobWrites,
      status: 202,
    });
    const cancelled = await settled(orderId, (status) => status === "cancelled");
    expect(cancelled.json).toMatchObject({ status: "cancelled" });

    // The list: newest first, `limit` per page, `nextCursor` to the next page and null on the last.
    // The read model may lag by a delivery: wait (as admins, each with a budget of its own) until it lists both of
    // bob's orders, then page through them as bob.
    const deadline = Date.now() + 10_000;
    const mine = { customerId: bob, limit: "100" };
    while (Date.now() < deadline) {
      const listing = await client.call("GET", "/v1/orders", { query: mine, status: 200 });
      if ((listing.json as { items: unknown[] }).items.length >= 2) break;
      await Bun.sleep(50);
    }
    type Page = { items: Array<{ orderId: string; createdAt: string }>; nextCursor: string | null };
    const listed = async (query: Record<string, string>) =>
      (await client.call("GET", "/v1/orders", { query, as: bobWrites, status: 200 })).json as Page;
    const pageOne = await listed({ customerId: bob, limit: "1" });
    expect(pageOne.items.length).toBe(1);
    expect(pageOne.nextCursor).toEqual(expect.any(String));
    const pageTwo = await listed({ customerId: bob, limit: "1", cursor: pageOne.nextCursor as string });
    expect(pageTwo.items.length).toBe(1);
    expect(pageTwo.nextCursor).toBeNull();
    expect(String(pageTwo.items[0]?.createdAt) <= String(pageOne.items[0]?.createdAt)).toBe(true);
    const all = await client.call("GET", "/v1/orders", {
      query: { customerId: bob, limit: "100" },
      as: bobWrites,
      status: 200,
    });
    expect((all.json as { nextCursor: unknown }).nextCursor).toBeNull();
    await client.call("GET", "/v1/orders", { query: { status: "confirmed", q: sku }, status: 200 });
    for (const limit of ["0", "101", "x"])
      await client.call("GET", "/v1/orders", { query: { limit }, as: bobWrites, status: 400 });
    await client.call("GET", "/v1/orders", { query: { status: "shipped" }, as: bobWrites, status: 400 });
    await client.call("GET", "/v1/orders", { query: { customerId: eve }, as: bobWrites, status: 403 });
    await client.call("GET", "/v1/orders", { as: customer(bob, "billing:read"), status: 403 });
    expectConformance();
  });

  test("webhook subscriptions, API keys, the activity log and the demo counters", async () => {
    const hook = { url: "http://127.0.0.1:9/hook", events: ["order.confirmed"] };
    const created = await client.call("POST", "/v1/webhooks/subscriptions", { body: hook, status: 201 });
    const subscription = { params: { id: (created.json as { id: string }).id } };
    await client.call("POST", "/v1/webhooks/subscriptions", {
      body: { ...hook, events: ["order.shipped"] },
      status: 400,
    });
    await client.call("POST", "/v1/webhooks/subscriptions", {
      body: hook,
      as: customer(id("c"), "orders:write"),
      status: 403,
    });
    await client.call("GET", "/v1/webhooks/subscriptions", { query: { limit: "10" }, status: 200 });
    await client.call("GET", "/v1/webhooks/subscriptions/{id}", { ...subscription, status: 200 });
    await client.call("GET", "/v1/webhooks/subscriptions/{id}/attempts", { ...subscription, status: 200 });
    await client.call("POST", "/v1/webhooks/subscriptions/{id}/rotate-secret", {
      ...subscription,
      body: { overlapSeconds: 60 },
      status: 200,
    });
    await client.call("GET", "/v1/webhooks/subscriptions/{id}", { ...subscription, status: 200 });
    const missing = { params: { id: "whsub_nothing" } };
    await client.call("GET", "/v1/webhooks/subscriptions/{id}", { ...missing, status: 404 });
    await client.call("GET", "/v1/webhooks/subscriptions/{id}/attempts", { ...missing, status: 404 });
    await client.call("POST", "/v1/webhooks/subscriptions/{id}/rotate-secret", {
      ...missing,
      body: {},
      status: 404,
    });
    await client.call("DELETE", "/v1/webhooks/subscriptions/{id}", { ...subscription, status: 204 });
    // Deleting is idempotent: once more is 204 again; an id never created is 404.
    await client.call("DELETE", "/v1/webhooks/subscriptions/{id}", { ...subscription, status: 204 });
    await client.call("DELETE", "/v1/webhooks/subscriptions/{id}", { ...missing, status: 404 });

    const key = await client.call("POST", "/v1/api-keys", {
      body: { sub: id("bot"), scopes: ["orders:read"], name: "ci" },
      status: 201,
    });
    const { id: keyId, key: apiKey } = key.json as { id: string; key: string };
    await client.call("GET", "/v1/orders", { as: null, headers: { "x-api-key": apiKey }, status: 200 });
    await client.call("POST", "/v1/api-keys", {
      body: { sub: id("bot"), scopes: ["everything"] },
      status: 400,
    });
    await client.call("POST", "/v1/api-keys", {
      body: { sub: id("bot"), scopes: ["admin"] },
      as: customer(id("c"), "orders:write"),
      status: 403,
    });
    await client.call("DELETE", "/v1/api-keys/{id}", { params: { id: keyId }, status: 204 });
    await client.call("DELETE", "/v1/api-keys/{id}", { params: { id: keyId }, status: 204 });
    await client.call("DELETE", "/v1/api-keys/{id}", { params: { id: "key_nothing" }, status: 404 });
    await client.call("GET", "/v1/orders", { as: null, headers: { "x-api-key": apiKey }, status: 401 });
    await client.call("GET", "/v1/orders", { headers: { "x-api-key": apiKey }, status: 400 });

    const activity = await client.call("GET", "/v1/activity", {
      query: { type: "admin.*", limit: "2" },
      status: 200,
    });
    const cursor = (activity.json as { nextCursor: string | null }).nextCursor;
    expect(cursor).toEqual(expect.any(String));
    await client.call("GET", "/v1/activity", {
      query: { type: "admin.*", limit: "2", cursor: cursor as string },
      status: 200,
    });
    await client.call("GET", "/v1/activity", { query: { limit: "1000" }, status: 400 });
    await client.call("GET", "/v1/activity", { as: customer(id("c"), "orders:read"), status: 403 });

    const counter = { params: { key: id("counter") } };
    await client.call("POST", "/v1/counters/{key}/increment", {
      ...counter,
      body: { by: 2 },
      as: customer(id("c")),
      status: 200,
    });
    await client.call("GET", "/v1/counters/{key}", { ...counter, as: customer(id("c")), status: 200 });
    await client.call("POST", "/v1/counters/{key}/increment", { ...counter, body: { by: 0 }, status: 400 });
    await client.call("GET", "/v1/counters/{key}", { ...counter, as: null, status: 401 });
    expectConformance();
  });

  test("inbound webhooks: accepted, duplicate, and each refusal", async () => {
    const inbound = "/webhooks/inbound/{source}";
    const supplier = { params: { source: "supplier" }, as: null };
    const sku = id("restocked");
    await client.call("PUT", "/v1/inventory/{sku}", {
      params: { sku },
      body: { available: 1, priceCents: 100 },
      status: 200,
    });
    const body = JSON.stringify({ type: "inventory.restocked", sku, quantity: 4 });
    const webhookId = id("msg-1");
    const accepted = await client.call("POST", inbound, {
      ...supplier,
      raw: body,
      headers: signed(webhookId, body),
      status: 202,
    });
    expect(accepted.json).toEqual({ status: "accepted" });
    // The sender's retry of the same webhook-id: 202 again, and nothing applied twice.
    const again = await client.call("POST", inbound, {
      ...supplier,
      raw: body,
      headers: signed(webhookId, body),
      status: 202,
    });
    expect(again.json).toEqual({ status: "duplicate" });
    await client.call("POST", inbound, {
      params: { source: "stranger" },
      as: null,
      raw: body,
      headers: signed(id("m2"), body),
      status: 401,
    });
    const forged = signed(id("m3"), body, `whsec_${btoa("another secret, 24 bytes!")}`);
    await client.call("POST", inbound, { ...supplier, raw: body, headers: forged, status: 401 });
    await client.call("POST", inbound, {
      ...supplier,
      raw: body,
      headers: { "content-type": "application/json" },
      status: 401,
    });
    await client.call("POST", inbound, {
      ...supplier,
      raw: "{not json",
      headers: signed(id("m4"), "{not json"),
      status: 400,
    });
    const unknown = JSON.stringify({ type: "inventory.vanished", sku });
    await client.call("POST", inbound, {
      ...supplier,
      raw: unknown,
      headers: signed(id("m5"), unknown),
      status: 422,
    });
    const invalid = JSON.stringify({ type: "inventory.restocked", sku, quantity: 0 });
    await client.call("POST", inbound, {
      ...supplier,
      raw: invalid,
      headers: signed(id("m6"), invalid),
      status: 422,
    });
    // A compressed body: 415 before its signature is checked (this one is labelled gzip, sent plain).
    await client.call("POST", inbound, {
      ...supplier,
      raw: body,
      headers: { ...signed(id("m7"), body), "content-encoding": "gzip" },
      status: 415,
    });
    expectConformance();
  });

  test("the console and the online backup", async () => {
    await client.call("GET", "/_console", { status: 200 });
    await client.call("GET", "/_console", { query: { notice: "not a notice!" }, status: 400 });
    await client.call("GET", "/_console", { as: customer(id("c"), "orders:read"), status: 403 });
    await client.call("GET", "/_console", { as: null, status: 401 });
    await client.call("GET", "/_console", { as: null, headers: { accept: "text/html" }, status: 401 });
    await client.call("GET", "/_console", {
      query: { notice: "!" },
      headers: { accept: "text/html" },
      status: 400,
    });
    await client.call("GET", "/_console", {
      as: customer(id("c"), "orders:read"),
      headers: { accept: "text/html" },
      status: 403,
    });
    const admin = await client.token(client.admin());
    await client.call("GET", "/_console", {
      as: null,
      query: { token: admin },
      headers: { accept: "text/html" },
      status: 303,
    });
    await client.call("POST", "/v1/backup", { as: customer(id("c"), "orders:read"), status: 403 });
    await client.call("POST", "/v1/backup", { as: null, status: 401 });
    await client.call("POST", "/v1/backup", { status: 200 });
    expectConformance();
  });
});

/** Every operation of the document, as [method, path template, operation]. */
const operations = () =>
  Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => [method.toUpperCase(), path, operation] as const),
  );
/** Path parameters that every route's schema takes, for cases that never reach the route's own work. */
const anyParams = (path: string) =>
  Object.fromEntries([...path.matchAll(/\{(\w+)\}/g)].map(([, name]) => [name as string, "x1"]));
const isPublic = (operation: { security?: unknown }) =>
  Array.isArray(operation.security) && operation.security.length === 0;

describe("every operation", () => {
  test("refuses a body over the limit (413) and, where it reads JSON, a body of another type (415)", async () => {
    const big = JSON.stringify({ padding: "x".repeat(70 * 1024) });
    for (const [method, path, operation] of operations()) {
      if (method !== "POST" && method !== "PUT") continue;
      const params = anyParams(path);
      await client.call(method, path, {
        params,
        raw: big,
        headers: { "content-type": "application/json" },
        status: 413,
      });
      if (operation.requestBody === undefined || isPublic(operation)) continue;
      await client.call(method, path, {
        params,
        raw: "{}",
        headers: { "content-type": "text/plain" },
        status: 415,
      });
    }
    expectConformance();
  });

  test("without credentials, or with a bad one, is 401 with WWW-Authenticate (public routes excepted)", async () => {
    for (const [method, path, operation] of operations()) {
      if (isPublic(operation) || path === "/metrics") continue;
      const params = anyParams(path);
      const body = method === "GET" || method === "DELETE" ? {} : { body: {} };
      const none = await client.call(method, path, { params, ...body, as: null, status: 401 });
      const bad = await client.call(method, path, {
        params,
        ...body,
        as: null,
        headers: { authorization: "Bearer not-a-jwt" },
        status: 401,
      });
      for (const answer of [none, bad])
        expect({ path, challenge: answer.headers.get("www-authenticate") }).toEqual({
          path,
          challenge: expect.stringMatching(/^Bearer/),
        });
      // Two credentials at once are refused before either is looked at.
      await client.call(method, path, {
        params,
        ...body,
        headers: { "x-api-key": "ek_whichever" },
        status: 400,
      });
    }
    expectConformance();
  });

  test("takes exactly the `limit` values the document allows on every list, and blank filters as absent", async () => {
    const hook = await client.call("POST", "/v1/webhooks/subscriptions", {
      body: { url: "http://127.0.0.1:9/hook", events: ["order.rejected"] },
      status: 201,
    });
    rejectedHook = (hook.json as { id: string }).id;
    const params = { id: rejectedHook };
    const lists = operations().filter(
      ([method, path]) => method === "GET" && client.checker.parameterSchema(method, path, "query", "limit"),
    );
    expect(lists.map(([, path]) => path).sort()).toEqual([
      "/v1/activity",
      "/v1/orders",
      "/v1/webhooks/subscriptions",
      "/v1/webhooks/subscriptions/{id}/attempts",
    ]);
    for (const [method, path] of lists) {
      const validate = client.checker.parameterSchema(method, path, "query", "limit");
      // A query value is text; the document may type it as an integer (sent as its digits) or as text.
      const documented = (text: string) => Boolean(validate?.(Number(text)) || validate?.(text));
      for (const limit of ["0", "1", "20", "100", "101", "999", "1000"]) {
        await client.call(method, path, { params, query: { limit }, status: documented(limit) ? 200 : 400 });
      }
    }
    // API.md writes the list's query as a template, `?customerId=&status=&q=&limit=&cursor=`: blanks are left out.
    await client.call("GET", "/v1/orders", {
      query: { customerId: "", status: "", q: "", limit: "", cursor: "" },
      status: 200,
    });
    await client.call("GET", "/v1/activity", {
      query: { subject: "", type: "", limit: "", cursor: "" },
      status: 200,
    });
    expectConformance();
  });

  test("takes exactly the Idempotency-Key values the document allows", async () => {
    const keyed = operations().filter(([method, path]) =>
      client.checker.parameterSchema(method, path, "header", "Idempotency-Key"),
    );
    expect(keyed.map(([method, path]) => `${method} ${path}`).sort()).toEqual([
      "POST /v1/counters/{key}/increment",
      "POST /v1/orders",
    ]);
    const bodies: Record<string, unknown> = {
      "/v1/orders": { customerId: id("keyed"), items: [{ sku: id("widget"), quantity: 1 }] },
      "/v1/counters/{key}/increment": { by: 1 },
    };
    for (const [method, path] of keyed) {
      const validate = client.checker.parameterSchema(method, path, "header", "Idempotency-Key");
      for (const key of ["", "k 1", "k\u00e9", "k".repeat(256), "k-1", "~!".repeat(127)]) {
        await client.call(method, path, {
          params: { key: id("keyed") },
          body: bodies[path],
          headers: { "idempotency-key": key },
          status: validate?.(key) ? (path === "/v1/orders" ? 202 : 200) : 400,
        });
      }
    }
    // Those orders are rejected (no account), and order.rejected goes to a subscription whose URL refuses
    // connections: its attempts have no status code (null) and an error, as documented.
    const deadline = Date.now() + 15_000;
    let attempts: Array<{ statusCode: number | null }> = [];
    while (attempts.length === 0 && Date.now() < deadline) {
      await Bun.sleep(100);
      const page = await client.call("GET", "/v1/webhooks/subscriptions/{id}/attempts", {
        params: { id: rejectedHook },
        status: 200,
      });
      attempts = (page.json as { items: typeof attempts }).items;
    }
    expect(attempts[0]?.statusCode).toBeNull();
    expectConformance();
  });

  test("over the rate limit is 429 with Retry-After and RateLimit-*; under it, RateLimit-* on the answer", async () => {
    const spent = client.admin();
    const first = await client.call("GET", "/v1/counters/{key}", {
      params: { key: "x1" },
      as: spent,
      status: 200,
    });
    for (const name of ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"])
      expect({ name, value: first.headers.get(name) }).toEqual({ name, value: expect.any(String) });
    // A window that ended between spending a budget and the requests that should find it spent would give them a
    // new one: this case starts in a window with 20 s to go at least (it takes a second or two).
    const reset = Number(first.headers.get("ratelimit-reset"));
    if (reset < 20) await Bun.sleep((reset + 1) * 1000);
    const token = await client.token(spent);
    const burn = (method: string) =>
      Promise.all(
        Array.from({ length: rateLimit }, () =>
          fetch(`${node.url}/v1/nothing-here`, {
            method,
            headers: { authorization: `Bearer ${token}` },
          }).then((r) => r.text()),
        ),
      );
    await burn("GET");
    await burn("POST");
    for (const [method, path, operation] of operations()) {
      if (isPublic(operation) || path === "/metrics") continue;
      const body = method === "GET" || method === "DELETE" ? {} : { body: {} };
      const answer = await client.call(method, path, {
        params: anyParams(path),
        ...body,
        as: spent,
        status: 429,
      });
      for (const name of ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"])
        expect({ path, name, value: answer.headers.get(name) }).toEqual({
          path,
          name,
          value: expect.any(String),
        });
    }
    // Anonymous callers spend their address's budget: an inbound webhook is limited too.
    const anonymous = () =>
      Promise.all(
        Array.from({ length: rateLimit }, () =>
          fetch(`${node.url}/v1/nothing-here`, { method: "POST" }).then((r) => r.text()),
        ),
      );
    await anonymous();
    const body = JSON.stringify({ type: "inventory.restocked", sku: "x1", quantity: 1 });
    await client.call("POST", "/webhooks/inbound/{source}", {
      params: { source: "supplier" },
      as: null,
      raw: body,
      headers: signed(id("limited"), body),
      status: 429,
    });
    // Refused credentials spend a budget of their own per address: past it, a bad credential is 429, not 401.
    await Promise.all(
      Array.from({ length: rateLimit }, () =>
        fetch(`${node.url}/v1/nothing-here`, { headers: { authorization: "Bearer not-a-jwt" } }).then((r) =>
          r.text(),
        ),
      ),
    );
    const guessing = await client.call("GET", "/v1/orders", {
      as: null,
      headers: { authorization: "Bearer not-a-jwt" },
      status: 429,
    });
    for (const name of ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"])
      expect({ name, value: guessing.headers.get(name) }).toEqual({ name, value: expect.any(String) });
    expectConformance();
  });
});

describe("a node whose dependencies fail, and that stops", () => {
  test("503 with Retry-After on every limited route while the rate limit cannot count", async () => {
    for (const [method, path, operation] of operations()) {
      if (path === "/metrics" || path === "/healthz" || path === "/readyz" || path === "/openapi.json")
        continue;
      const body = method === "GET" || method === "DELETE" ? {} : { body: {} };
      const answer = await failingClient.call(method, path, {
        params: anyParams(path),
        ...body,
        ...(isPublic(operation) ? { as: null } : {}),
        status: 503,
      });
      expect({ path, retryAfter: answer.headers.get("retry-after") }).toEqual({
        path,
        retryAfter: expect.any(String),
      });
    }
    // Redis is not critical: the node is still ready, and says which dependency is down.
    const ready = await failingClient.call("GET", "/readyz", { as: null, status: 200 });
    expect(ready.json).toMatchObject({ dependencies: { redis: { ok: false, critical: false } } });
    expect(failingClient.violations.splice(0)).toEqual([]);
  });

  test("/metrics with METRICS_TOKEN: the token or an admin JWT; 401 without, 403 for a JWT without admin", async () => {
    await failingClient.call("GET", "/metrics", {
      as: null,
      headers: { authorization: `Bearer ${metricsToken}` },
      status: 200,
    });
    await failingClient.call("GET", "/metrics", { status: 200 });
    await failingClient.call("GET", "/metrics", { as: null, status: 401 });
    await failingClient.call("GET", "/metrics", { as: customer(id("c"), "orders:read"), status: 403 });
    expect(failingClient.violations.splice(0)).toEqual([]);
  });

  test("504 when a body does not arrive in time", async () => {
    const stalled = operations().filter(([method]) => method === "POST" || method === "PUT");
    await Promise.all(
      stalled.map(async ([method, path]) => {
        const url = new URL(failingClient.url(path, { params: anyParams(path) }));
        // Chunked, one byte of JSON, then nothing: the body limit waits for the rest until the request's time is up.
        const answer = await rawExchange(Number(url.port), {
          head: `${method} ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n`,
          waitMs: 5_000,
          closeWaitMs: 0,
        });
        const headers = [...answer.headers];
        await failingClient.record(
          method,
          path,
          new Response(answer.body, { status: answer.status, headers }),
        );
        expect({ path, status: answer.status }).toEqual({ path, status: 504 });
      }),
    );
    expect(failingClient.violations.splice(0)).toEqual([]);
  });

  test("/readyz is 503 draining once the node stops", async () => {
    const stopping = failing.stop();
    const draining = await failingClient.call("GET", "/readyz", { as: null, status: 503 });
    expect(draining.json).toEqual({ status: "draining", dependencies: {} });
    await stopping;
    expect(failingClient.violations.splice(0)).toEqual([]);
  });
});

test("every operation of the document was called, and answered its success at least once", () => {
  const missing = operations().flatMap(([method, path]) => {
    const seen = [
      ...(client.seen.get(`${method} ${path}`) ?? []),
      ...(failingClient.seen.get(`${method} ${path}`) ?? []),
    ];
    return seen.some((status) => status >= 200 && status < 400)
      ? []
      : [`${method} ${path} (${seen.join(", ") || "never called"})`];
  });
  expect(missing).toEqual([]);
});
