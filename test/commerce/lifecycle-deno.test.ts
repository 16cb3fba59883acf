// The order lifecycle on Deno: `npm run start:deno`'s entry as a process, its embedded broker and the real Postgres.
import { afterAll, beforeAll } from "bun:test";
import { type CommerceDenoNode, startCommerceDenoNode } from "./deno-node.ts";
import { lifecycleEnv, lifecycleSuite } from "./lifecycle.ts";

let running: CommerceDenoNode | undefined;

beforeAll(async () => {
  running = await startCommerceDenoNode("commerce_deno", lifecycleEnv);
}, 90_000);

afterAll(() => running?.stop());

lifecycleSuite("deno", () => (running as CommerceDenoNode).client);
