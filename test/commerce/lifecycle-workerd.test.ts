// The order lifecycle on Durable Objects: the production Worker (root wrangler.toml) under `wrangler dev`, with the
// local broker and the real Postgres, each on a schema of its own. Only 127.0.0.1.
import { afterAll, beforeAll } from "bun:test";
import { lifecycleSuite } from "./lifecycle.ts";
import { type CommerceWorker, startCommerceWorker } from "./workerd-node.ts";

let running: CommerceWorker | undefined;

beforeAll(async () => {
  running = await startCommerceWorker("commerce_cf");
}, 60_000);

afterAll(() => running?.stop());

lifecycleSuite("workerd", () => (running as CommerceWorker).client);
