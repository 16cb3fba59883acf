// The order lifecycle on the Bun host: one node, its embedded broker and the real Postgres.
import { afterAll, beforeAll } from "bun:test";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { lifecycleSuite } from "./lifecycle.ts";

let running: CommerceNode;
beforeAll(async () => {
  running = await startCommerceNode("commerce_bun");
}, 30_000);
afterAll(() => running?.stop());

lifecycleSuite("bun", () => running.client);
