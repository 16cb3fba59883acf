// A node restarted on another port: the embedded broker's waiting messages for it follow it there.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@upstash/qstash";
import { createEnvelope } from "../shared/envelope/index.ts";
import type { EdgewiseNode } from "./bun/node.ts";
import { startLocalNode } from "../test/support/local-node.ts";

test("a message waiting for the old port is delivered at the new one, once", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-origin-"));
  // 1 s of the broker's time is 10 ms: the message's delay and its retries (12 s, 2.5 min) come quickly.
  const start = () => startLocalNode(dataDir, {}, { brokerTimeScale: 0.01 });
  let node: EdgewiseNode = await start();
  try {
    const broker = node.broker as NonNullable<EdgewiseNode["broker"]>;
    const envelope = createEnvelope({
      type: "Increment",
      source: "edgewise://test",
      target: "counter/moved",
      data: { by: 1 },
    });
    // Waiting in the broker, addressed to this node's first port, when the node stops.
    await new Client({ baseUrl: broker.url, token: broker.token, retry: false }).publishJSON({
      url: `${node.url}/_edgewise/deliver/counter/moved`,
      body: envelope,
      delay: "10m",
    });
    const firstUrl = node.url;
    await node.stop();

    node = await start();
    expect(node.url).not.toBe(firstUrl);
    const count = async () => {
      const response = await fetch(`${node.url}/v1/counters/moved`, {
        headers: { authorization: `Bearer ${node.adminToken}` },
      });
      return ((await response.json()) as { count: number }).count;
    };
    // Due 6 s after it was sent; before, it went to the old port and failed through its retries.
    const deadline = Date.now() + 15_000;
    while ((await count()) === 0 && Date.now() < deadline) await Bun.sleep(100);
    expect(await count()).toBe(1);
    const [dead] = await node.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM qstash_dlq`;
    expect(dead?.n).toBe(0);
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
