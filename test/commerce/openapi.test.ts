// /openapi.json of the reference node: every endpoint of API.md, who may call it, and its problem+json errors.
import { afterAll, beforeAll, expect, test } from "bun:test";
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

/** API.md's endpoint table, as OpenAPI writes paths. */
const contract: Array<[method: string, path: string]> = [
  ["put", "/v1/inventory/{sku}"],
  ["get", "/v1/inventory/{sku}"],
  ["put", "/v1/accounts/{customerId}"],
  ["get", "/v1/accounts/{customerId}"],
  ["post", "/v1/orders"],
  ["get", "/v1/orders/{orderId}"],
  ["post", "/v1/orders/{orderId}/cancel"],
  ["get", "/v1/orders"],
  ["get", "/v1/customers/{customerId}/loyalty"],
  ["get", "/v1/activity"],
  ["post", "/v1/webhooks/subscriptions"],
  ["delete", "/v1/webhooks/subscriptions/{id}"],
  ["post", "/webhooks/inbound/{source}"],
  ["post", "/v1/api-keys"],
  ["delete", "/v1/api-keys/{id}"],
  ["get", "/healthz"],
  ["get", "/readyz"],
  ["get", "/metrics"],
];
const publicPaths = new Set([
  "/webhooks/inbound/{source}",
  "/openapi.json",
  "/healthz",
  "/readyz",
  "/metrics",
]);

test("every endpoint of API.md is documented, with who may call it", () => {
  expect(spec.openapi).toBe("3.1.0");
  expect(spec.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
  for (const [method, path] of contract) {
    const operation = spec.paths[path]?.[method];
    expect({ method, path, documented: operation !== undefined }).toEqual({ method, path, documented: true });
    // A public route says so; the others inherit the document's requirement and document 401 and 403.
    if (publicPaths.has(path))
      expect({ path, security: operation?.security }).toEqual({ path, security: [] });
    else {
      expect(operation?.security).toBeUndefined();
      expect(Object.keys(operation?.responses ?? {})).toEqual(expect.arrayContaining(["401", "403", "429"]));
    }
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
