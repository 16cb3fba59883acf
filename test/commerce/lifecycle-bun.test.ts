// The order lifecycle on the Bun host: one node, its embedded broker and the real Postgres.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { lifecycleEnv, lifecycleSuite } from "./lifecycle.ts";

let running: CommerceNode;
beforeAll(async () => {
  running = await startCommerceNode("commerce_bun", lifecycleEnv);
}, 30_000);
afterAll(() => running?.stop());

lifecycleSuite("bun", () => running.client);

// Hono's SmartRouter uses the RegExpRouter (one regular expression per method) unless a route shape makes it refuse
// the table, and then falls back to the TrieRouter for every request of the node. A literal segment beside a
// parameter (`/dlq/purge` and `/dlq/:dlqId/retry`) is such a shape.
test("the whole node's route table (gateway, console, commerce) compiles into Hono's RegExpRouter", () => {
  const router = new RegExpRouter<string>();
  for (const route of running.node.app.routes) router.add(route.method, route.path, route.path);
  expect(() => router.match("GET", "/healthz")).not.toThrow();
  expect(running.node.app.routes.some((route) => route.path === "/_console/dlq/:action")).toBe(true);
});
