// A node's stop: /readyz says draining while the node still serves (closing kept-alive connections), and an upload
// that never ends cannot hold it.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { parseConfig } from "../shared/config/index.ts";
import { startNode } from "./bun/node.ts";
import { referenceSystem } from "./reference.ts";
import { startLocalNode } from "../test/support/local-node.ts";

/** One HTTP/1.1 request on a raw connection that asks to be kept alive: the answer, and whether the server closed it. */
function keepAliveRequest(base: string, path: string): Promise<{ answer: string; closedByServer: boolean }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let answer = "";
    const socket = connect({ host: hostname, port: Number(port) }, () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`),
    );
    // A connection kept alive stays open: after 1 s with an answer and no close, the server kept it.
    const kept = setTimeout(() => {
      socket.destroy();
      resolve({ answer, closedByServer: false });
    }, 1_000);
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
    });
    socket.on("end", () => {
      clearTimeout(kept);
      resolve({ answer, closedByServer: true });
    });
    socket.on("error", reject);
  });
}

// One data dir for the file's nodes, one after the other: a fresh one cost each its embedded PGlite's first setup,
// most of a start. The first case publishes nothing, so the second's broker has only its own orders' messages.
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-stop-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

test("stop: readiness 503 during EDGEWISE_SHUTDOWN_DELAY, then a bounded drain", async () => {
  const node = await startLocalNode(dataDir, { EDGEWISE_SHUTDOWN_DELAY: "2s" }, { httpDrainMs: 500 });
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
    // Still serving while load balancers take it out, and a kept-alive connection is closed after its answer, so
    // the client's next request goes out on a new one (elsewhere) instead of meeting the listener's close.
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    const { answer, closedByServer } = await keepAliveRequest(node.url, "/healthz");
    expect(answer).toStartWith("HTTP/1.1 200");
    expect(answer.toLowerCase()).toContain("connection: close");
    expect(closedByServer).toBe(true);

    await stopped;
    // 2 s of delay, 0.5 s of drain, then the rest of the stop: well under the upload's endless wait.
    expect(Date.now() - started).toBeLessThan(9_000);
    expect(await upload).not.toBe(200);
  } finally {
    await node.stop();
  }
}, 30_000);

test("stop: the embedded broker stops handing out messages before the actors stop, so none is refused", async () => {
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
  }
}, 60_000);
