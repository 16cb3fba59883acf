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
