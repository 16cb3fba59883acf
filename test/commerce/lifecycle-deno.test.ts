// The order lifecycle on Deno: `npm run start:deno`'s entry as a process, its embedded broker and the real Postgres.
import { afterAll, beforeAll } from "bun:test";
import { type CommerceDenoNode, startCommerceDenoNode } from "./deno-node.ts";
import { lifecycleEnv, lifecycleSuite } from "./lifecycle.ts";

let running: CommerceDenoNode | undefined;

beforeAll(async () => {
  // REDIS_URL: on Deno the rate limit and the read cache then run on ioredis against the real Redis.
  running = await startCommerceDenoNode("commerce_deno", {
    ...lifecycleEnv,
    REDIS_URL: "redis://127.0.0.1:6379",
  });
}, 90_000);

afterAll(() => running?.stop());

lifecycleSuite("deno", () => (running as CommerceDenoNode).client);
