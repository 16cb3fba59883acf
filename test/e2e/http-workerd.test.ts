// HTTP framing under workerd: a refused streamed body leaves its connection usable, HEAD never states a wrong length, and
// the gateway's HTTP semantics are a node's (a trailing slash redirected, a body it cannot read as sent refused).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { SignJWT } from "jose";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import { startProcess } from "./process.ts";

const root = resolve(import.meta.dir, "../..");
const persistTo = mkdtempSync(join(tmpdir(), "edgewise-http-workerd-"));
let server: Awaited<ReturnType<typeof startProcess>>;
let host = "";
let secret = "";

beforeAll(async () => {
  secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  const command = () => wranglerDev({ persistTo, vars: { JWT_SECRET: secret } });
  server = await startProcess(command(), {
    cwd: root,
    env: wranglerEnv,
    pattern: /Ready on (https?:\/\/[\w.]+:\d+)/,
    again: () => ({ command: command() }),
  });
  host = new URL(server.match).host;
}, 60_000);

afterAll(async () => {
  await server?.kill();
  rmSync(persistTo, { recursive: true, force: true });
});

/**
 * Raw requests written on one keep-alive connection; resolves with every byte answered once `complete` says the
 * answers are in, or after `ms`.
 */
function exchange(requests: string[], complete: (answered: string) => boolean, ms: number): Promise<string> {
  const [hostname, port] = host.split(":");
  return new Promise((done, fail) => {
    let answered = "";
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      for (const request of requests) socket.write(request);
    });
    const stop = setTimeout(() => {
      socket.destroy();
      done(answered);
    }, ms);
    socket.on("data", (chunk) => {
      answered += chunk.toString("latin1");
      if (complete(answered)) {
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

const statusesOf = (answered: string) =>
  (answered.match(/HTTP\/1\.1 (\d{3})/g) ?? []).map((line) => line.slice(9));

test("a chunked body over the limit gets 413, and the connection still answers the next request", async () => {
  // 100 KB in 10 chunks of 10 KB: over the 64 KiB limit, with no Content-Length to refuse it by.
  const chunk = "a".repeat(10_000);
  const chunked = `${`${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(10)}0\r\n\r\n`;
  const put =
    `PUT /v1/inventory/x HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
    `Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n${chunked}`;
  const health = `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`;
  const answered = await exchange(
    [put, health],
    (text) => statusesOf(text).length >= 2 && text.endsWith('"ok"}'),
    8_000,
  );
  expect(statusesOf(answered)).toEqual(["413", "200"]);
  expect(answered).toContain('"code":"request.too_large"');
}, 30_000);

test("HEAD for a client that takes gzip: no Content-Length beside Content-Encoding, which would be the wrong one", async () => {
  const head = (acceptEncoding: string) =>
    `HEAD /readyz HTTP/1.1\r\nHost: ${host}\r\n${acceptEncoding}Connection: close\r\n\r\n`;
  for (const acceptEncoding of ["Accept-Encoding: gzip\r\n", ""]) {
    const answered = await exchange([head(acceptEncoding)], (text) => text.includes("\r\n\r\n"), 5_000);
    const headers = answered.split("\r\n\r\n")[0]?.toLowerCase() ?? "";
    expect({ acceptEncoding, status: statusesOf(answered)[0] }).toEqual({ acceptEncoding, status: "200" });
    // workerd compresses for a client that takes gzip, so the GET's length is not known before compression:
    // saying the uncompressed one would be false.
    if (acceptEncoding !== "") expect(headers).toContain("content-encoding: gzip");
    if (headers.includes("content-encoding:")) expect(headers).not.toContain("content-length:");
  }
}, 30_000);

test("as on a node: a trailing slash is redirected for a read, and a gzipped or Latin-1 body is a 415", async () => {
  const redirected = await fetch(`http://${host}/healthz/?probe=1`, { redirect: "manual" });
  expect(redirected.status).toBe(308);
  expect(redirected.headers.get("location")).toBe("/healthz?probe=1");
  const token = await new SignJWT({ sub: "http-workerd", scope: "admin" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(secret));
  const increment = (body: Uint8Array<ArrayBuffer> | string, headers: Record<string, string>) =>
    fetch(`http://${host}/v1/counters/http-workerd/increment`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
      body,
    });
  const gzipped = await increment(new Uint8Array(Bun.gzipSync(Buffer.from('{"by":2}'))), {
    "content-encoding": "gzip",
  });
  expect(gzipped.status).toBe(415);
  expect(gzipped.headers.get("accept-encoding")).toBe("identity");
  expect((await increment('{"by":2}', { "content-type": "application/json; charset=latin1" })).status).toBe(
    415,
  );
  expect((await increment('{"by":1,"by":500}', {})).status).toBe(400);
  expect(await (await increment('{"by":2}', {})).json()).toEqual({ count: 2 });
}, 30_000);
