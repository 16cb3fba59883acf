// An upgrade from a version that addressed each read-side part on its own: its queued deliveries are applied.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@upstash/qstash";
import { createEnvelope } from "../shared/envelope/index.ts";
import { newId } from "../shared/ids/index.ts";
import type { EdgewiseNode } from "./bun/node.ts";
import { startLocalNode } from "../test/support/local-node.ts";

test("deliveries an older version queued for projector/orders, activity/all and cache/reads are applied", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-legacy-readside-"));
  // 1 s of the broker's time is 10 ms: a refused delivery's retries (12 s, 2.5 min, 30 min) come quickly.
  const node: EdgewiseNode = await startLocalNode(dataDir, {}, { brokerTimeScale: 0.01 });
  try {
    const broker = node.broker as NonNullable<EdgewiseNode["broker"]>;
    const client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
    const orderId = newId();
    // What an order actor of 512e24d published for one event: the same envelope to each part's own address.
    const placed = createEnvelope({
      type: "OrderPlaced",
      source: `edgewise://order/${orderId}`,
      data: {
        orderId,
        version: 1,
        customerId: "legacy-customer",
        items: [{ sku: "legacy-sku", quantity: 2 }],
        placedAt: new Date().toISOString(),
      },
    });
    for (const target of ["projector/orders", "activity/all", "cache/reads"]) {
      await client.publishJSON({
        url: `${node.url}/_edgewise/deliver/${target}`,
        body: { ...placed, target },
        headers: { "Upstash-Message-Id": placed.id },
      });
    }
    const get = async (path: string) => {
      const response = await fetch(`${node.url}${path}`, {
        headers: { authorization: `Bearer ${node.adminToken}` },
      });
      return (await response.json()) as { items: Array<Record<string, unknown>> };
    };
    const applied = async () => {
      const orders = await get("/v1/orders?customerId=legacy-customer");
      const activity = await get(`/v1/activity?subject=${orderId}&limit=10`);
      const [dead] = await node.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM qstash_dlq`;
      const [waiting] = await node.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM qstash_messages`;
      return {
        listed: orders.items.map((order) => order.orderId),
        logged: activity.items.filter((event) => event.id === placed.id).length,
        dead: dead?.n,
        waiting: waiting?.n,
      };
    };
    const expected = { listed: [orderId], logged: 1, dead: 0, waiting: 0 };
    const deadline = Date.now() + 15_000;
    while (!Bun.deepEquals(await applied(), expected) && Date.now() < deadline) await Bun.sleep(100);
    // Before, all three were refused as unknown actor types (404), retried and dead-lettered: dead 3, nothing applied.
    expect(await applied()).toEqual(expected);
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
