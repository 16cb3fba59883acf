// Security suite, scopes: a token or API key without a route's scope gets 403 and changes nothing; scope claims can't be forged.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { base64url } from "jose";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, uniqueName } from "../commerce/client.ts";
import { startReceiver } from "../broker/helpers.ts";
import { hs256 } from "./jwt-table.ts";
import { attackCategory } from "./report.ts";
import { type Credential, expectClosed, send } from "./support.ts";
import { scopes } from "../../edge/middleware/auth/principal.ts";

const cases = attackCategory("scopes");

/** Every scope but `admin`. */
const nonAdmin: string[] = scopes.filter((scope) => scope !== "admin");
const allBut = (scope: string) => nonAdmin.filter((granted) => granted !== scope);

let running: CommerceNode;
let receiver: ReturnType<typeof startReceiver>;
const owner = uniqueName("cust-s");
const sku = uniqueName("scope-sku");
let orderId: string;
let subscriptionId: string;
let keyId: string;
let dlqId: string;
/** An API key of `owner` with orders:read only. */
let readerKey: string;
/** An API key of `owner` with webhooks:admin only. */
let webhookAdminKey: string;

const now = () => Math.floor(Date.now() / 1000);
const token = (claims: Record<string, unknown>, secret = running.jwtSecret) =>
  hs256({ sub: owner, iat: now(), exp: now() + 300, ...claims }, secret);
const jwt = async (scopes: string[]): Promise<Credential> => ({
  bearer: await running.client.token(owner, scopes),
});

async function deadLetters(): Promise<string[]> {
  const broker = running.node;
  const response = await fetch(`${broker.brokerUrl}/v2/dlq`, {
    headers: { authorization: `Bearer ${broker.broker?.token}` },
  });
  const { messages } = (await response.json()) as { messages: Array<{ dlqId: string }> };
  return messages.map((message) => message.dlqId).sort();
}

/** Everything the refused calls below could have changed. */
async function snapshot() {
  const { sql } = running.node;
  const [subscriptions] = await sql<Array<{ active: number; target: string | null; secret: string | null }>>`
    SELECT (SELECT count(*) FROM webhook_subscriptions WHERE deleted_at IS NULL)::int AS active,
           (SELECT deleted_at::text FROM webhook_subscriptions WHERE id = ${subscriptionId}) AS target,
           (SELECT secret FROM webhook_subscriptions WHERE id = ${subscriptionId}) AS secret`;
  const [keys] = await sql<Array<{ live: number; target: string | null }>>`
    SELECT (SELECT count(*) FROM edgewise_api_keys WHERE revoked_at IS NULL)::int AS live,
           (SELECT revoked_at::text FROM edgewise_api_keys WHERE id = ${keyId}) AS target`;
  const order = await running.client.order(orderId);
  return {
    stock: running.node.host?.inspect({ type: "inventory", key: sku }).state,
    balance: await running.client.balance(owner),
    order: `${order.status} ${order.updatedAt}`,
    subscriptions,
    keys,
    deadLetters: await deadLetters(),
    receiverHits: receiver.deliveries.length,
  };
}
let before: Awaited<ReturnType<typeof snapshot>>;
const unchanged = async () => Bun.deepEquals(await snapshot(), before);

beforeAll(async () => {
  running = await startCommerceNode("security_scopes");
  const api = running.client;
  await api.putSku(sku, 50, 100);
  await api.putAccount(owner, 5_000);
  orderId = (await api.settle((await api.place(owner, [{ sku, quantity: 1 }])).body.orderId)).orderId;
  subscriptionId = expectOk(
    await api.call<{ id: string }>("POST", "/v1/webhooks/subscriptions", {
      body: { url: "http://127.0.0.1:9/never", events: ["order.cancelled"] },
    }),
  ).id;
  const issue = async (scopes: string[]) =>
    expectOk(
      await api.call<{ id: string; key: string }>("POST", "/v1/api-keys", { body: { sub: owner, scopes } }),
    );
  keyId = (await issue(["orders:read"])).id;
  readerKey = (await issue(["orders:read"])).key;
  webhookAdminKey = (await issue(["webhooks:admin"])).key;
  // One dead letter, for the console's replay and delete forms: a message whose only attempt fails.
  receiver = startReceiver(() => new Response("no", { status: 500 }));
  const published = await fetch(`${running.node.brokerUrl}/v2/publish/${receiver.url("/dead")}`, {
    method: "POST",
    headers: { authorization: `Bearer ${running.node.broker?.token}`, "upstash-retries": "0" },
    body: "{}",
  });
  expect(published.status).toBe(201);
  await eventually(async () => (await deadLetters()).length === 1, "the dead letter");
  dlqId = (await deadLetters())[0] as string;
  before = await snapshot();
}, 30_000);
afterAll(async () => {
  receiver?.stop();
  await running?.stop();
});

/** Each route of API.md with the scope it needs, and a request that would change something if allowed. */
const routes = (): Array<[scope: string, method: string, path: string, body?: unknown]> => [
  ["inventory:write", "PUT", `/v1/inventory/${sku}`, { available: 0, priceCents: 1 }],
  ["inventory:read", "GET", `/v1/inventory/${sku}`],
  ["billing:write", "PUT", `/v1/accounts/${owner}`, { balanceCents: 0 }],
  ["billing:read", "GET", `/v1/accounts/${owner}`],
  ["orders:write", "POST", "/v1/orders", { customerId: owner, items: [{ sku, quantity: 1 }] }],
  ["orders:read", "GET", `/v1/orders/${orderId}`],
  ["orders:write", "POST", `/v1/orders/${orderId}/cancel`],
  ["orders:read", "GET", "/v1/orders"],
  ["loyalty:read", "GET", `/v1/customers/${owner}/loyalty`],
  ["admin", "GET", "/v1/activity"],
  [
    "webhooks:admin",
    "POST",
    "/v1/webhooks/subscriptions",
    { url: "http://127.0.0.1:9/x", events: ["order.confirmed"] },
  ],
  ["webhooks:admin", "GET", "/v1/webhooks/subscriptions"],
  ["webhooks:admin", "GET", `/v1/webhooks/subscriptions/${subscriptionId}`],
  ["webhooks:admin", "GET", `/v1/webhooks/subscriptions/${subscriptionId}/attempts`],
  ["webhooks:admin", "POST", `/v1/webhooks/subscriptions/${subscriptionId}/rotate-secret`, {}],
  ["webhooks:admin", "DELETE", `/v1/webhooks/subscriptions/${subscriptionId}`],
  ["admin", "POST", "/v1/api-keys", { sub: owner, scopes: ["admin"] }],
  ["admin", "DELETE", `/v1/api-keys/${keyId}`],
];

describe("a missing scope", () => {
  test("a JWT with every other scope gets 403 problem+json on each route, and nothing changes", async () => {
    for (const [scope, method, path, body] of routes()) {
      const answer = await send(running.node.url, method, path, {
        as: await jwt(allBut(scope)),
        ...(body !== undefined ? { body } : {}),
      });
      expectClosed(
        cases,
        `JWT without ${scope}: ${method} ${path}`,
        { status: answer.status, problem: answer.problem, unchanged: await unchanged() },
        { status: 403, problem: true, unchanged: true },
      );
    }
  });

  test("an API key with orders:read only gets 403 on every route needing more", async () => {
    for (const [scope, method, path, body] of routes()) {
      if (scope === "orders:read") continue;
      const answer = await send(running.node.url, method, path, {
        as: { apiKey: readerKey },
        ...(body !== undefined ? { body } : {}),
      });
      expectClosed(
        cases,
        `API key (orders:read) without ${scope}: ${method} ${path}`,
        { status: answer.status, problem: answer.problem, unchanged: await unchanged() },
        { status: 403, problem: true, unchanged: true },
      );
    }
  });

  test("no credentials: 401 problem+json with WWW-Authenticate: Bearer on each route", async () => {
    for (const [scope, method, path, body] of routes()) {
      const answer = await send(running.node.url, method, path, body !== undefined ? { body } : {});
      expectClosed(
        cases,
        `anonymous, ${scope}: ${method} ${path}`,
        {
          status: answer.status,
          problem: answer.problem,
          challenge: answer.headers.get("www-authenticate"),
          unchanged: await unchanged(),
        },
        { status: 401, problem: true, challenge: "Bearer", unchanged: true },
      );
    }
  });
});

/** Each route with a request it would refuse as invalid (path, query or body), and the scope it needs. */
const invalidRequests = (): Array<
  [scope: string, method: string, path: string, body?: unknown, headers?: Record<string, string>]
> => [
  ["inventory:write", "PUT", "/v1/inventory/a%20b", "{"],
  ["inventory:read", "GET", "/v1/inventory/a%20b"],
  ["billing:write", "PUT", `/v1/accounts/${owner}`, "x", { "content-type": "text/plain" }],
  ["billing:read", "GET", "/v1/accounts/a%0Ab"],
  ["orders:write", "POST", "/v1/orders", { bad: 1 }],
  ["orders:read", "GET", "/v1/orders/a%20b"],
  ["orders:write", "POST", "/v1/orders/a%20b/cancel"],
  ["orders:read", "GET", "/v1/orders?limit=0"],
  ["loyalty:read", "GET", "/v1/customers/a%0Ab/loyalty"],
  ["admin", "GET", "/v1/activity?limit=0"],
  ["webhooks:admin", "POST", "/v1/webhooks/subscriptions", { url: 1 }],
  ["webhooks:admin", "DELETE", "/v1/webhooks/subscriptions/a%20b"],
  ["webhooks:admin", "GET", "/v1/webhooks/subscriptions?limit=0"],
  ["webhooks:admin", "GET", "/v1/webhooks/subscriptions/a%20b"],
  ["webhooks:admin", "GET", `/v1/webhooks/subscriptions/${subscriptionId}/attempts?cursor=forged`],
  [
    "webhooks:admin",
    "POST",
    `/v1/webhooks/subscriptions/${subscriptionId}/rotate-secret`,
    { overlapSeconds: -1 },
  ],
  ["admin", "POST", "/v1/api-keys", { sub: 1 }],
];

describe("credentials and scope come before validation", () => {
  test("an invalid request is 401 without credentials and 403 without the scope, never a 400 or 415", async () => {
    for (const [scope, method, path, body, headers] of invalidRequests()) {
      const request = { ...(body !== undefined ? { body } : {}), ...(headers ? { headers } : {}) };
      const anonymous = await send(running.node.url, method, path, request);
      const unscoped = await send(running.node.url, method, path, {
        ...request,
        as: await jwt(allBut(scope)),
      });
      const admin = await send(running.node.url, method, path, { ...request, as: await jwt(["admin"]) });
      expectClosed(
        cases,
        `invalid request, anonymous and without ${scope}: ${method} ${path}`,
        { anonymous: anonymous.status, unscoped: unscoped.status, unchanged: await unchanged() },
        { anonymous: 401, unscoped: 403, unchanged: true },
      );
      // …and the request is invalid: a caller allowed to send it learns why.
      expect([400, 415]).toContain(admin.status);
    }
  });
});

describe("minting API keys", () => {
  test("only admin mints keys: an orders:read key or a webhooks:admin key asking for admin gets 403", async () => {
    for (const [name, credential] of [
      ["orders:read key", { apiKey: readerKey }],
      ["webhooks:admin key", { apiKey: webhookAdminKey }],
      ["webhooks:admin JWT", await jwt(["webhooks:admin"])],
    ] as Array<[string, Credential]>) {
      for (const scopes of [["admin"], ["orders:read"], nonAdmin]) {
        const answer = await send(running.node.url, "POST", "/v1/api-keys", {
          as: credential,
          body: { sub: uniqueName("minted"), scopes },
        });
        expectClosed(
          cases,
          `${name} mints a key with ${scopes.join(" ")}`,
          { status: answer.status, problem: answer.problem, unchanged: await unchanged() },
          { status: 403, problem: true, unchanged: true },
        );
      }
    }
  });

  test("even an admin cannot mint a scope that does not exist", async () => {
    for (const scopes of [["root"], ["*"], ["admin "], ["orders:*"], ["ADMIN"]]) {
      const answer = await running.client.call("POST", "/v1/api-keys", { body: { sub: owner, scopes } });
      expectClosed(
        cases,
        `admin mints ${JSON.stringify(scopes)}`,
        { status: answer.status, problem: answer.headers.get("content-type"), unchanged: await unchanged() },
        { status: 400, problem: "application/problem+json", unchanged: true },
      );
    }
  });
});

describe("forged and odd scope claims", () => {
  test("a scope claim tampered into admin breaks the signature: 401", async () => {
    const genuine = await token({ scope: "orders:read" });
    const [header, , signature] = genuine.split(".");
    const admin = base64url.encode(JSON.stringify({ sub: owner, scope: "admin", exp: now() + 300 }));
    const forged: Array<[string, string]> = [
      ["payload swapped, signature kept", `${header}.${admin}.${signature}`],
      [
        "re-signed with another secret",
        await token({ scope: "admin" }, "another-secret-another-secret-0123456789"),
      ],
      ["alg none", `${base64url.encode('{"alg":"none","typ":"JWT"}')}.${admin}.`],
    ];
    for (const [name, bearer] of forged) {
      const answer = await send(running.node.url, "GET", "/v1/activity", { as: { bearer } });
      expectClosed(
        cases,
        `scope tampered: ${name}`,
        { status: answer.status, problem: answer.problem, unchanged: await unchanged() },
        { status: 401, problem: true, unchanged: true },
      );
    }
  });

  test("scope spellings that are not `admin` grant nothing (validly signed)", async () => {
    const claims: Array<Record<string, unknown>> = [
      { scope: "ADMIN" },
      { scope: "Admin" },
      { scope: "admin:" },
      { scope: "orders:read,admin" },
      { scope: "orders:read\tadmin" },
      { scope: "*" },
      { scope: "admin*" },
      { scope: "webhooks:admin" },
      { scope: "orders:read", scp: ["admin"] },
      { scope: "orders:read", scopes: ["admin"], roles: ["admin"], admin: true },
    ];
    for (const claim of claims) {
      const answer = await send(running.node.url, "GET", "/v1/activity", {
        as: { bearer: await token(claim) },
      });
      expectClosed(
        cases,
        `claims ${JSON.stringify(claim)} on GET /v1/activity`,
        { status: answer.status, problem: answer.problem },
        { status: 403, problem: true },
      );
    }
  });
});

describe("the operator console", () => {
  test("a non-admin cannot open it, inspect actors, or replay, delete or purge dead letters", async () => {
    const scoped = await running.client.token(owner, nonAdmin);
    const attempts: Array<[string, string, string, Record<string, string>]> = [
      ["Bearer, every other scope", "GET", "/_console", { authorization: `Bearer ${scoped}` }],
      ["?token=, every other scope", "GET", `/_console?token=${scoped}`, {}],
      ["API key", "GET", "/_console", { "x-api-key": webhookAdminKey }],
      ["Bearer", "GET", `/_console/actors/inventory/${sku}`, { authorization: `Bearer ${scoped}` }],
      ["Bearer", "POST", `/_console/dlq/${dlqId}/retry`, { authorization: `Bearer ${scoped}` }],
      ["Bearer", "POST", `/_console/dlq/${dlqId}/delete`, { authorization: `Bearer ${scoped}` }],
      ["Bearer", "POST", "/_console/dlq/purge", { authorization: `Bearer ${scoped}` }],
    ];
    for (const [via, method, path, headers] of attempts) {
      const answer = await send(running.node.url, method, path, { headers });
      expectClosed(
        cases,
        `${via}: ${method} ${path.replace(scoped, "<token>")}`,
        { status: answer.status, cookie: answer.headers.get("set-cookie"), unchanged: await unchanged() },
        { status: 403, cookie: null, unchanged: true },
      );
    }
  });

  test("anonymous gets 401; an admin's cookie without the CSRF token, or from another origin, replays nothing", async () => {
    const admin = await running.client.token();
    const scoped = await running.client.token(owner, nonAdmin);
    // The cookie holds a console session's id, which only an admin's `?token=` opens; a JWT put there is none.
    const login = await fetch(`${running.node.url}/_console?token=${admin}`, { redirect: "manual" });
    const session = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const attempts: Array<[string, string, string, Record<string, string>, number]> = [
      ["anonymous", "GET", "/_console", {}, 401],
      ["anonymous", "POST", `/_console/dlq/${dlqId}/retry`, {}, 401],
      [
        "a JWT of every other scope as the cookie",
        "GET",
        "/_console",
        { cookie: `edgewise_console=${scoped}` },
        401,
      ],
      [
        "a JWT of every other scope as the cookie",
        "POST",
        `/_console/dlq/${dlqId}/retry`,
        { cookie: `edgewise_console=${scoped}` },
        401,
      ],
      [
        "an admin's JWT as the cookie",
        "POST",
        "/_console/dlq/purge",
        { cookie: `edgewise_console=${admin}` },
        401,
      ],
      ["admin cookie, no CSRF token", "POST", `/_console/dlq/${dlqId}/retry`, { cookie: session }, 403],
      [
        "admin cookie, wrong CSRF token",
        "POST",
        `/_console/dlq/${dlqId}/delete`,
        { cookie: session, "content-type": "application/x-www-form-urlencoded" },
        403,
      ],
      [
        "admin cookie, another origin",
        "POST",
        "/_console/dlq/purge",
        { cookie: session, origin: "https://evil.example" },
        403,
      ],
      // `purge` is the only one-segment action under /_console/dlq/ (the route takes a parameter there).
      [
        "admin bearer, an action that does not exist",
        "POST",
        "/_console/dlq/drop",
        { authorization: `Bearer ${admin}` },
        404,
      ],
    ];
    for (const [via, method, path, headers, status] of attempts) {
      const answer = await fetch(`${running.node.url}${path}`, {
        method,
        headers,
        redirect: "manual",
        ...(headers["content-type"] ? { body: "csrf=0000" } : {}),
      });
      await answer.body?.cancel();
      expectClosed(
        cases,
        `${via}: ${method} ${path}`,
        { status: answer.status, unchanged: await unchanged() },
        { status, unchanged: true },
      );
    }
  });
});

test("after every refusal, and time for anything queued to land, nothing changed", async () => {
  await Bun.sleep(300);
  expect(await snapshot()).toEqual(before);
});
