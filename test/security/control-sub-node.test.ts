// A JWT whose sub holds a control character is refused (401) on a node, as an API key's sub and a customerId are.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";

let running: CommerceNode;
beforeAll(async () => {
  running = await startCommerceNode("control_sub");
}, 30_000);
afterAll(() => running?.stop());

test("an admin 'a\\u0000b' is refused, not recorded in the activity log as the admin 'a\\ufffdb'", async () => {
  const api = running.client;
  const body = { sub: "k", scopes: ["orders:read"] };
  // Before, 201 twice, and both keys' admin.api_key_created named the actor "a\ufffdb": the log's JSON cannot hold
  // NUL, so two different admins were one in the audit trail.
  const refused = await api.call("POST", "/v1/api-keys", {
    as: { sub: "a\u0000b", scopes: ["admin"] },
    body,
  });
  expect(refused.status).toBe(401);
  expect(refused.headers.get("www-authenticate")).toContain("Bearer");
  expect(refused.body).toMatchObject({ detail: "invalid token: malformed sub" });
  expect(
    (await api.call("POST", "/v1/api-keys", { as: { sub: "a\ufffdb", scopes: ["admin"] }, body })).status,
  ).toBe(201);
  const log = await api.call<{ items: Array<{ data: { actor: { sub: string } } }> }>(
    "GET",
    "/v1/activity?type=admin.api_key_created",
  );
  expect(log.body.items.map((event) => event.data.actor.sub)).toEqual(["a\ufffdb"]);
});
