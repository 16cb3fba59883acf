// A node's stop: /readyz says draining while the node still serves, and an upload that never ends cannot hold it.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../shared/config/index.ts";
import { startNode } from "./bun/node.ts";
import { referenceSystem } from "./reference.ts";

test("stop: readiness 503 during EDGEWISE_SHUTDOWN_DELAY, then a bounded drain", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-stop-"));
  const node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      EDGEWISE_DATA_DIR: dataDir,
      EDGEWISE_SHUTDOWN_DELAY: "1s",
      EDGEWISE_TRACING: "off",
    }),
    ...referenceSystem(),
    log: () => {},
    httpDrainMs: 500,
  });
  try {
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
    // An upload that sends its first bytes, then nothing more.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"available": '));
      },
    });
    const upload = fetch(`${node.url}/v1/inventory/stuck`, {
      method: "PUT",
      headers: { authorization: `Bearer ${node.adminToken}`, "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit).then(
      (response) => response.status,
      () => "closed",
    );
    await Bun.sleep(100);

    const started = Date.now();
    const stopped = node.stop();
    await Bun.sleep(200);
    const ready = await fetch(`${node.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { status: string }).status).toBe("draining");
    // Still serving while load balancers take it out.
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);

    await stopped;
    // 1 s of delay, 0.5 s of drain, then the rest of the stop: well under the upload's endless wait.
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(await upload).not.toBe(200);
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 30_000);

test("stop: the embedded broker stops handing out messages before the actors stop, so none is refused", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-stop-"));
  const config = parseConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    EDGEWISE_DATA_DIR: dataDir,
    EDGEWISE_TRACING: "off",
    RATE_LIMIT: "100000/1s",
  });
  const start = () => startNode({ config, ...referenceSystem(), log: () => {} });
  let node = await start();
  try {
    const call = (method: string, path: string, body: unknown) =>
      fetch(`${node.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${node.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    await call("PUT", "/v1/inventory/kite", { available: 1_000, priceCents: 100 });
    await call("PUT", "/v1/accounts/ada", { balanceCents: 1_000_000 });
    // Orders whose saga is still hopping through the queue when the stop begins.
    const placed = await Promise.all(
      Array.from({ length: 40 }, () =>
        call("POST", "/v1/orders", { customerId: "ada", items: [{ sku: "kite", quantity: 1 }] }),
      ),
    );
    expect(placed.map((response) => response.status)).toEqual(placed.map(() => 202));
    await node.stop();

    node = await start();
    // Before, deliveries handed out while the actors stopped were refused (503): each spent a retry (an ERROR
    // then a RETRY in the broker's log) and waited out its backoff after the restart.
    const [refused] = await node.sql<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM qstash_events WHERE state IN ('ERROR', 'RETRY', 'FAILED')`;
    expect(refused?.n).toBe(0);
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
