// A streamed body over the limit, under workerd: 413, and the same connection then serves the next request.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import { startProcess } from "./process.ts";

const root = resolve(import.meta.dir, "../..");

/** Two requests on one keep-alive connection; resolves with every byte answered within `ms`. */
function twoRequests(base: string, first: string, second: string, ms: number): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((done, fail) => {
    let answered = "";
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.write(first);
      socket.write(second);
    });
    const stop = setTimeout(() => {
      socket.destroy();
      done(answered);
    }, ms);
    socket.on("data", (chunk) => {
      answered += chunk.toString("latin1");
      // Both answers are in once the second status line and the end of its body have arrived.
      if ((answered.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= 2 && answered.endsWith('"ok"}')) {
        clearTimeout(stop);
        socket.destroy();
        done(answered);
      }
    });
    socket.on("error", (error) => {
      clearTimeout(stop);
      fail(error);
    });
  });
}

test("a chunked body over the limit gets 413, and the connection still answers the next request", async () => {
  const persistTo = mkdtempSync(join(tmpdir(), "edgewise-body-limit-workerd-"));
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  const server = await startProcess(wranglerDev({ persistTo, vars: { JWT_SECRET: secret } }), {
    cwd: root,
    env: wranglerEnv,
    pattern: /Ready on (https?:\/\/[\w.]+:\d+)/,
  });
  try {
    const host = new URL(server.match).host;
    // 100 KB in 10 chunks of 10 KB: over the 64 KiB limit, with no Content-Length to refuse it by.
    const chunk = "a".repeat(10_000);
    const chunked = `${`${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(10)}0\r\n\r\n`;
    const put =
      `PUT /v1/inventory/x HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
      `Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n${chunked}`;
    const health = `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`;
    const answered = await twoRequests(server.match, put, health, 8_000);
    const statuses = (answered.match(/HTTP\/1\.1 (\d{3})/g) ?? []).map((line) => line.slice(9));
    expect(statuses).toEqual(["413", "200"]);
    expect(answered).toContain('"code":"request.too_large"');
  } finally {
    await server.kill();
    rmSync(persistTo, { recursive: true, force: true });
  }
}, 90_000);
