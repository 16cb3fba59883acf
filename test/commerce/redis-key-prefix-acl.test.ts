// A deployment on a Redis user allowed only its REDIS_KEY_PREFIX's keys: /readyz, the limiter and the cache work.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type AclRedis, startAclRedis } from "../support/redis-acl-server.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { eventually, uniqueName } from "./client.ts";

let redis: AclRedis;
let node: CommerceNode;

beforeAll(async () => {
  // As an operator shares one Redis between deployments: each user reaches only its own prefix's keys.
  redis = await startAclRedis("staging", "staging:*", `pw-${crypto.randomUUID()}`);
  node = await startCommerceNode("key_prefix_acl", {
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: "staging:",
  });
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await redis?.stop();
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
