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
