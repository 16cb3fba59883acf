// /openapi.json of the reference node: every endpoint of API.md, who may call it, and its problem+json errors.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as v from "valibot";
import * as responses from "../../edge/routes/responses.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";

interface Operation {
  security?: unknown[];
  parameters?: Array<{ in: string; name: string }>;
  responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }>;
}
interface Spec {
  openapi: string;
  security: unknown[];
  components: { schemas: Record<string, unknown> };
  paths: Record<string, Record<string, Operation>>;
}

let running: CommerceNode;
let spec: Spec;
beforeAll(async () => {
  running = await startCommerceNode("openapi");
  spec = (await (await fetch(`${running.node.url}/openapi.json`)).json()) as Spec;
}, 30_000);
afterAll(() => running?.stop());

/** API.md's endpoint table, as OpenAPI writes paths, with the scope each needs (undefined: public). */
const contract: Array<[method: string, path: string, scope: string | undefined, success: string]> = [
  ["put", "/v1/inventory/{sku}", "inventory:write", "200"],
  ["get", "/v1/inventory/{sku}", "inventory:read", "200"],
  ["put", "/v1/accounts/{customerId}", "billing:write", "200"],
  ["get", "/v1/accounts/{customerId}", "billing:read", "200"],
  ["post", "/v1/orders", "orders:write", "202"],
  ["get", "/v1/orders/{orderId}", "orders:read", "200"],
  ["post", "/v1/orders/{orderId}/cancel", "orders:write", "202"],
  ["get", "/v1/orders", "orders:read", "200"],
  ["get", "/v1/customers/{customerId}/loyalty", "loyalty:read", "200"],
  ["get", "/v1/activity", "admin", "200"],
  ["post", "/v1/webhooks/subscriptions", "webhooks:admin", "201"],
  ["delete", "/v1/webhooks/subscriptions/{id}", "webhooks:admin", "204"],
  ["post", "/webhooks/inbound/{source}", undefined, "202"],
  ["post", "/v1/api-keys", "admin", "201"],
  ["delete", "/v1/api-keys/{id}", "admin", "204"],
  ["get", "/openapi.json", undefined, "200"],
  ["get", "/healthz", undefined, "200"],
  ["get", "/readyz", undefined, "200"],
  ["get", "/metrics", undefined, "200"],
  ["get", "/_console", "admin", "200"],
];
/** Where API.md (or the route) says a resource may not exist: a documented 404, as problem+json. */
const notFoundPaths: Array<[method: string, path: string]> = [
  ["get", "/v1/inventory/{sku}"],
  ["get", "/v1/accounts/{customerId}"],
  ["get", "/v1/orders/{orderId}"],
  ["post", "/v1/orders/{orderId}/cancel"],
  ["delete", "/v1/webhooks/subscriptions/{id}"],
  ["delete", "/v1/api-keys/{id}"],
];

test("every endpoint of API.md is documented, with the scope it needs and the schema of its answer", () => {
  expect(spec.openapi).toBe("3.1.0");
  expect(spec.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
  for (const [method, path, scope, success] of contract) {
    const operation = spec.paths[path]?.[method];
    expect({ method, path, documented: operation !== undefined }).toEqual({ method, path, documented: true });
    const codes = Object.keys(operation?.responses ?? {});
    if (scope === undefined) {
      // A public route says so, and lists no authentication errors it never gives.
      expect({ path, security: operation?.security }).toEqual({ path, security: [] });
      expect({ path, codes: codes.filter((code) => code === "403") }).toEqual({ path, codes: [] });
    } else {
      expect({ path, security: operation?.security }).toEqual({
        path,
        security: [{ bearer: [scope] }, { apiKey: [scope] }],
      });
      expect({ path, codes }).toEqual({ path, codes: expect.arrayContaining(["401", "403", "429"]) });
    }
    // Every answer with a body has a schema for it; a 204 has none.
    const answer = operation?.responses[success];
    const content = Object.values(answer?.content ?? {}) as Array<{ schema?: unknown }>;
    if (success === "204") expect({ path, content }).toEqual({ path, content: [] });
    else
      expect({ path, schemas: content.filter((media) => media.schema !== undefined).length }).toEqual({
        path,
        schemas: 1,
      });
  }
  for (const [method, path] of notFoundPaths) {
    const missing = spec.paths[path]?.[method]?.responses["404"];
    expect({ method, path, content: Object.keys(missing?.content ?? {}) }).toEqual({
      method,
      path,
      content: ["application/problem+json"],
    });
  }
  expect(Object.keys(spec.paths["/v1/orders"]?.post?.responses["422"]?.content ?? {})).toEqual([
    "application/problem+json",
  ]);
});

test("the document is public: a bad credential does not stop it, and it still lists every route", async () => {
  const credentials: Array<Record<string, string>> = [
    { authorization: "Bearer garbage" },
    { "x-api-key": "ek_nope" },
    {},
  ];
  for (const headers of credentials) {
    const response = await fetch(`${running.node.url}/openapi.json`, { headers });
    expect({ headers, status: response.status }).toEqual({ headers, status: 200 });
    const document = (await response.json()) as Spec;
    expect(Object.keys(document.paths).sort()).toEqual(Object.keys(spec.paths).sort());
  }
});

test("errors are documented as problem+json, validation failures included", () => {
  expect(spec.components.schemas.Problem).toBeDefined();
  const place = spec.paths["/v1/orders"]?.post as Operation;
  for (const status of ["400", "401", "403", "413", "415", "429", "503"])
    expect(Object.keys(place.responses[status]?.content ?? {})).toEqual(["application/problem+json"]);
  expect(place.parameters?.some((p) => p.in === "header" && p.name === "Idempotency-Key")).toBe(true);
  expect(place.responses["202"]?.headers?.Location).toBeDefined();
  const inbound = spec.paths["/webhooks/inbound/{source}"]?.post as Operation;
  expect(
    inbound.parameters
      ?.filter((p) => p.in === "header")
      .map((p) => p.name)
      .sort(),
  ).toEqual(["webhook-id", "webhook-signature", "webhook-timestamp"]);
});

/** A real answer holds to its documented schema, and carries no top-level field the schema does not name. */
function conforms(what: string, schema: v.ObjectSchema<v.ObjectEntries, undefined>, body: unknown) {
  const parsed = v.safeParse(schema, body);
  expect({ what, issues: parsed.issues?.map((issue) => `${v.getDotPath(issue)}: ${issue.message}`) }).toEqual(
    {
      what,
      issues: undefined,
    },
  );
  const unnamed = Object.keys(body as object).filter((key) => !(key in schema.entries));
  expect({ what, unnamed }).toEqual({ what, unnamed: [] });
}

test("real answers hold to the schemas /openapi.json documents", async () => {
  const { client } = running;
  const call = async (method: string, path: string, body?: unknown) => {
    const reply = await client.call(method, path, body === undefined ? {} : { body });
    expect({ method, path, status: reply.status < 300 }).toEqual({ method, path, status: true });
    return reply.body as unknown;
  };
  conforms(
    "PUT sku",
    responses.SkuView,
    await call("PUT", "/v1/inventory/oa-widget", { available: 5, priceCents: 250 }),
  );
  conforms("GET sku", responses.SkuView, await call("GET", "/v1/inventory/oa-widget"));
  conforms(
    "PUT account",
    responses.AccountView,
    await call("PUT", "/v1/accounts/oa-ada", { balanceCents: 10_000 }),
  );
  conforms("GET account", responses.AccountView, await call("GET", "/v1/accounts/oa-ada"));
  const placed = await call("POST", "/v1/orders", {
    customerId: "oa-ada",
    items: [{ sku: "oa-widget", quantity: 2 }],
  });
  conforms("POST order", responses.OrderAccepted, placed);
  const { orderId } = placed as { orderId: string };
  await client.settle(orderId);
  conforms("GET order", responses.OrderView, await call("GET", `/v1/orders/${orderId}`));
  conforms("POST cancel", responses.OrderAccepted, await call("POST", `/v1/orders/${orderId}/cancel`));
  await client.settle(orderId, (order) => order.status === "cancelled" && order.refundedAt !== undefined);
  conforms("GET cancelled order", responses.OrderView, await call("GET", `/v1/orders/${orderId}`));
  const page = await eventuallyValue(
    () => call("GET", "/v1/orders?customerId=oa-ada") as Promise<{ items: unknown[] }>,
    (listed) => listed.items.length > 0,
  );
  conforms("GET orders", responses.OrderPage, page);
  for (const item of page.items) conforms("a listed order", responses.OrderView, item);
  conforms("GET loyalty", responses.LoyaltyView, await call("GET", "/v1/customers/oa-ada/loyalty"));
  const activity = (await call("GET", "/v1/activity?limit=5")) as { items: unknown[] };
  conforms("GET activity", responses.ActivityPage, activity);
  expect(activity.items.length).toBeGreaterThan(0);
  for (const item of activity.items) conforms("an activity entry", responses.CloudEvent, item);
  const created = await call("POST", "/v1/webhooks/subscriptions", {
    url: "http://127.0.0.1:9/hook",
    events: ["order.confirmed"],
  });
  conforms("POST subscription", responses.SubscriptionCreated, created);
  const { id } = created as { id: string };
  conforms("GET subscriptions", responses.SubscriptionPage, await call("GET", "/v1/webhooks/subscriptions"));
  conforms(
    "GET subscription",
    responses.SubscriptionView,
    await call("GET", `/v1/webhooks/subscriptions/${id}`),
  );
  conforms(
    "GET attempts",
    responses.AttemptPage,
    await call("GET", `/v1/webhooks/subscriptions/${id}/attempts`),
  );
  conforms(
    "POST rotate",
    responses.SecretRotated,
    await call("POST", `/v1/webhooks/subscriptions/${id}/rotate-secret`, { overlapSeconds: 60 }),
  );
  const rotatedView = await call("GET", `/v1/webhooks/subscriptions/${id}`);
  conforms("GET rotated subscription", responses.SubscriptionView, rotatedView);
  expect((rotatedView as { previousSecretExpiresAt: string | null }).previousSecretExpiresAt).not.toBeNull();
  conforms(
    "POST api key",
    responses.ApiKeyCreated,
    await call("POST", "/v1/api-keys", { sub: "oa-bot", scopes: ["orders:read"] }),
  );
  conforms("POST counter", responses.CounterView, await call("POST", "/v1/counters/oa/increment", { by: 2 }));
  conforms("GET counter", responses.CounterView, await call("GET", "/v1/counters/oa"));
  conforms("GET healthz", responses.Health, await (await fetch(`${running.node.url}/healthz`)).json());
  const ready = await (await fetch(`${running.node.url}/readyz`)).json();
  conforms("GET readyz", responses.Readiness, ready);
  for (const [name, dependency] of Object.entries((ready as { dependencies: object }).dependencies))
    conforms(`readyz ${name}`, responses.Readiness.entries.dependencies.value, dependency);
});

/** Polls `read` until `done` holds (the read model may lag by a delivery). */
async function eventuallyValue<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await Bun.sleep(50);
  }
}

test("415 is declared on exactly the operations that take a JSON body: a cancel or a backup never answers it", () => {
  const operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      at: `${method.toUpperCase()} ${path}`,
      takesJson:
        (operation as { requestBody?: { content?: Record<string, unknown> } }).requestBody?.content?.[
          "application/json"
        ] !== undefined,
      declares415: "415" in operation.responses,
    })),
  );
  expect(operations.filter((operation) => operation.takesJson).length).toBeGreaterThanOrEqual(8);
  expect(operations.filter((operation) => operation.takesJson !== operation.declares415)).toEqual([]);
  // The inbound webhook reads the raw bytes its signature covers, and refuses only a Content-Encoding with 415.
  const inbound = spec.paths["/webhooks/inbound/{source}"]?.post as { responses: Record<string, unknown> };
  expect(inbound.responses["415"]).toMatchObject({ headers: { "Accept-Encoding": { required: true } } });
});
