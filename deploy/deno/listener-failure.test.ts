// A Deno node whose idle connections take every file descriptor: it logs why and stops in order, exit 1.
import { expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { denoEntryCommand, startProcess } from "../../test/e2e/process.ts";
import { restartablePort } from "../../test/support/ports.ts";
import { wranglerRecords } from "../../test/support/wrangler.ts";

const root = resolve(import.meta.dir, "../..");
/** The node's file descriptor limit (ulimit -n): low, so that a few hundred idle connections reach it. */
const fdLimit = 512;

test("on Deno, idle connections up to the fd limit end the node with a logged reason and a drain, not a crash", async () => {
  const port = restartablePort();
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-deno-emfile-"));
  const node = await startProcess(
    ["sh", "-c", `ulimit -n ${fdLimit} && exec "$0" "$@"`, ...denoEntryCommand(root)],
    {
      cwd: root,
      env: { PORT: String(port), HOST: "127.0.0.1", EDGEWISE_DATA_DIR: dataDir, EDGEWISE_TRACING: "off" },
      pattern: /listening on (\S+)/,
    },
  );
  const sockets: Socket[] = [];
  try {
    // Deno.serve never closes a connection that sends nothing: each one holds a descriptor of the node's.
    const open = readdirSync(`/proc/${node.child.pid}/fd`).length;
    for (let i = 0; i < fdLimit - open + 32 && node.child.exitCode === null; i++) {
      const socket = connect({ host: "127.0.0.1", port });
      socket.on("error", () => {});
      sockets.push(socket);
      if (i % 50 === 49) await Bun.sleep(20);
    }
    const code = await Promise.race([node.child.exited, Bun.sleep(40_000).then(() => "still running")]);
    const lines = node.output().split("\n");
    // wranglerRecords skips a line it cannot parse: stdout and stderr are read as they come, so a long line (an
    // error's stack) written in parts may have the other stream's text in between (aee1622).
    const failure = wranglerRecords(node.output()).find(
      (record) =>
        typeof record.msg === "string" &&
        record.msg.startsWith("the HTTP listener stopped accepting connections"),
    );
    // Before: Deno's "error: Uncaught (in promise) Http: Error: Too many open files (os error 24)", and no drain.
    expect({
      code,
      failure: failure?.level,
      drained: lines.some((line) => line.includes('"msg":"stopping: /readyz answers 503 draining"')),
      uncaught: lines.some((line) => line.includes("Uncaught")),
    }).toEqual({ code: 1, failure: "error", drained: true, uncaught: false });
  } finally {
    for (const socket of sockets) socket.destroy();
    await node.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 120_000);
