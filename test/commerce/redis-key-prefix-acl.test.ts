// A deployment on a Redis user allowed only its REDIS_KEY_PREFIX's keys: /readyz, the limiter and the cache work.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { parseRedisUrl, RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import { direct } from "../redis-bridge/helpers.ts";
import { closedPort } from "../rate-limit/support.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { eventually, uniqueName } from "./client.ts";

/** A redis-server of this file's own: its ACL users are the server's, not to be set on the shared one. */
const port = closedPort();
const password = `pw-${crypto.randomUUID()}`;
let redisServer: ReturnType<typeof Bun.spawn> | undefined;
let node: CommerceNode;

beforeAll(async () => {
  redisServer = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdout: "ignore", stderr: "ignore" },
  );
  let admin: RespConnection | undefined;
  for (let tries = 0; !admin; tries++) {
    admin = await RespConnection.open(parseRedisUrl(`redis://127.0.0.1:${port}`)).catch(() => undefined);
    if (!admin && tries > 100) throw new Error("redis-server did not start");
    if (!admin) await Bun.sleep(50);
  }
  // As an operator shares one Redis between deployments: each user reaches only its own prefix's keys.
  const acl = ["ACL", "SETUSER", "staging", "on", `>${password}`, "~staging:*", "+@all", "-@dangerous"];
  expect(await direct(admin, ...acl)).toEqual(expect.objectContaining({ text: "OK" }));
  admin.close();
  node = await startCommerceNode("key_prefix_acl", {
    REDIS_URL: `redis://staging:${password}@127.0.0.1:${port}`,
    REDIS_KEY_PREFIX: "staging:",
  });
}, 60_000);

afterAll(async () => {
  await node?.stop();
  redisServer?.kill();
  await redisServer?.exited;
});

test("/readyz finds Redis up when the node's user may touch only its prefix's keys", async () => {
  const response = await fetch(`${node.node.url}/readyz`);
  const body = (await response.json()) as { dependencies?: Record<string, unknown> };
  expect(response.status).toBe(200);
  // Before, its probe read `edgewise:ping` whatever the prefix: refused (NOPERM), shown as Redis unreachable.
  expect(body.dependencies?.redis).toEqual(expect.objectContaining({ ok: true }));
  // And the keys it serves with are its own: a sku is cached and read as a hit.
  const sku = uniqueName("acl-mug");
  await node.client.putSku(sku, 5, 100);
  await eventually(async () => {
    const read = await node.client.call("GET", `/v1/inventory/${sku}`);
    return read.headers.get("x-cache") === "hit" && read.body.available === 5;
  }, "the sku cached under the prefix");
}, 60_000);
