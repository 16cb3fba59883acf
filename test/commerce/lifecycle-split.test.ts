// The order lifecycle through a gateway of a split deployment: every API.md case sent to a gateway, whose actor host
// shares its Postgres schema and queue.
import { afterAll, beforeAll } from "bun:test";
import { type CommerceNode, startCommerceGateway, startCommerceNode } from "./bun-node.ts";
import { lifecycleEnv, lifecycleSuite } from "./lifecycle.ts";

const actorHostSecret = crypto.randomUUID() + crypto.randomUUID();
let actorHost: CommerceNode;
let gateway: CommerceNode;
beforeAll(async () => {
  actorHost = await startCommerceNode("commerce_split", {
    ...lifecycleEnv,
    ACTOR_HOST_SECRET: actorHostSecret,
  });
  gateway = await startCommerceGateway(actorHost, actorHostSecret, {
    ...lifecycleEnv,
    WEBHOOKS_ALLOW_PRIVATE: "1",
  });
}, 60_000);
afterAll(async () => {
  await gateway?.stop();
  await actorHost?.stop();
});

lifecycleSuite("split: gateway → actor host", () => gateway.client);
