// A Deno node stopped (SIGTERM) while a client's upload never ends: the drain is bounded, and the stop exits 0.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { denoEntryCommand, startProcess } from "../../test/e2e/process.ts";
import { restartablePort } from "../../test/support/ports.ts";

const root = resolve(import.meta.dir, "../..");

// The drain is EDGEWISE_SHUTDOWN_DRAIN, 2 s here rather than its 10 s: what is checked is that it bounds the stop.
test("on Deno, SIGTERM during an upload that never ends stops after the drain with exit 0, not at the 28 s bound", async () => {
  const port = restartablePort();
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-deno-stop-"));
  const node = await startProcess(denoEntryCommand(root), {
    cwd: root,
    env: {
      PORT: String(port),
      HOST: "127.0.0.1",
      EDGEWISE_DATA_DIR: dataDir,
      EDGEWISE_TRACING: "off",
      EDGEWISE_SHUTDOWN_DRAIN: "2s",
    },
    pattern: /listening on (\S+)/,
  });
  const sockets: Socket[] = [];
  try {
    // A chunked upload that sends one chunk and then nothing: its request stays under way past the drain.
    const upload = connect({ host: "127.0.0.1", port });
    upload.on("error", () => {});
    upload.write(
      "POST /v1/counters/stop/increment HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n" +
        'transfer-encoding: chunked\r\n\r\n4\r\n{"by\r\n',
    );
    sockets.push(upload);
    await Bun.sleep(500);
    const started = Date.now();
    node.child.kill("SIGTERM");
    const code = await Promise.race([node.child.exited, Bun.sleep(40_000).then(() => "still running")]);
    // Before: Deno's shutdown() waited for that connection after the drain too, until the stop's bound (28 s)
    // ended the process with exit 1, the actors and stores never closed in order.
    expect({
      code,
      stopped: /^\[edgewise\] stopped in \d+ ms$/m.test(node.output()),
      withinMs: Date.now() - started < 20_000,
    }).toEqual({ code: 0, stopped: true, withinMs: true });
  } finally {
    for (const socket of sockets) socket.destroy();
    await node.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 120_000);
