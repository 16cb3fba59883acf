// bunServe on a port another listener holds refuses to start (EADDRINUSE), with or without TLS, instead of sharing it.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { issueCert, makeCa } from "../local/certs/openssl.ts";
import { watchTlsFiles } from "../tls.ts";
import { bunServe } from "./serve.ts";

const dir = mkdtempSync(join(tmpdir(), "edgewise-serve-port-"));
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const hostname = "127.0.0.1";
const fetch = () => new Response("ok");
const ca = makeCa({ cert: join(dir, "ca.pem"), key: join(dir, "ca.key"), commonName: "Edgewise test CA" });
const leaf = issueCert({
  cert: join(dir, "host.pem"),
  key: join(dir, "host.key"),
  ca,
  commonName: "edgewise host",
  sans: ["IP:127.0.0.1"],
  usage: ["serverAuth"],
});
const tlsFiles = () => {
  const files = watchTlsFiles(leaf);
  cleanups.push(() => files.close());
  return { files, requireClientCert: false };
};

/** The error code a start on `port` fails with, or "started" (then stopped again). */
async function startOn(port: number, tls: boolean): Promise<string> {
  try {
    const server = await bunServe({ port, hostname, fetch, ...(tls ? { tls: tlsFiles() } : {}) });
    await server.stop(true);
    return "started";
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
}

// Outside development mode Bun binds with SO_REUSEPORT unless told not to: a previous node, or any Bun server, holds
// its port that way. Before, a second node bound the same port beside it, and the kernel split the connections.
test("a port a Bun server holds is refused, TLS or not", async () => {
  const holder = Bun.serve({ port: 0, hostname, development: false, fetch });
  cleanups.push(() => holder.stop(true));
  expect(await startOn(holder.port as number, false)).toBe("EADDRINUSE");
  expect(await startOn(holder.port as number, true)).toBe("EADDRINUSE");
});

test("a port another node's listener holds is refused, TLS or not", async () => {
  for (const firstTls of [false, true]) {
    const first = await bunServe({ port: 0, hostname, fetch, ...(firstTls ? { tls: tlsFiles() } : {}) });
    try {
      expect(await startOn(first.port, false)).toBe("EADDRINUSE");
      expect(await startOn(first.port, true)).toBe("EADDRINUSE");
    } finally {
      await first.stop(true);
    }
  }
});

test("a free port starts, TLS or not, and again once the listener stopped", async () => {
  const probe = Bun.serve({ port: 0, hostname, fetch });
  const port = probe.port as number;
  probe.stop(true);
  expect(await startOn(port, true)).toBe("started");
  expect(await startOn(port, false)).toBe("started");
  expect(await startOn(port, true)).toBe("started");
});

// Bun writes Date on every answer but a HEAD's (RFC 9110 §6.6.1 asks it of all of them): bunServe adds it, to an
// answer made here and to one whose headers are immutable (a proxied one), and keeps one the answer already has.
// (`fetch` in this file is the listeners' handler: the network's is `globalThis.fetch`.)
test("a HEAD answer has a Date, as its GET does", async () => {
  const upstream = Bun.serve({ port: 0, hostname, fetch: () => new Response("upstream") });
  const server = await bunServe({
    port: 0,
    hostname,
    fetch: (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/proxied")
        return globalThis.fetch(`http://${hostname}:${upstream.port}/`, { method: request.method });
      if (path === "/dated")
        return new Response("ok", { headers: { date: "Thu, 01 Jan 2026 00:00:00 GMT" } });
      return new Response("ok");
    },
  });
  try {
    for (const path of ["/", "/proxied", "/dated"]) {
      for (const method of ["GET", "HEAD"]) {
        const answer = await globalThis.fetch(`http://${hostname}:${server.port}${path}`, { method });
        await answer.body?.cancel();
        const date = answer.headers.get("date");
        expect({ path, method, dated: date !== null }).toEqual({ path, method, dated: true });
        if (path === "/dated") expect(date).toBe("Thu, 01 Jan 2026 00:00:00 GMT");
        else expect(Math.abs(Date.parse(date as string) - Date.now())).toBeLessThan(60_000);
      }
    }
  } finally {
    await server.stop(true);
    upstream.stop(true);
  }
});
