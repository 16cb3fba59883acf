// What a node prints first, and where this machine reaches it: the URL must be one that answers.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNode } from "../test/support/local-node.ts";
import { dialableHost } from "./serve.ts";
import { firstRunLines, listeningLine, tryItLines } from "./try-it.ts";

test("the listening line says what the socket is bound to, not only the URL to use", () => {
  expect(listeningLine("http://127.0.0.1:8787", "0.0.0.0", "data in ./.edgewise")).toBe(
    "[edgewise] listening on http://127.0.0.1:8787 (bound to 0.0.0.0: every interface, set HOST=127.0.0.1 for this machine only; data in ./.edgewise)",
  );
  expect(listeningLine("http://127.0.0.1:8787", "127.0.0.1", "data in d")).toContain(
    "(this machine only; data in d)",
  );
  expect(listeningLine("http://10.0.0.5:8787", "10.0.0.5", "data in d")).toContain(
    "(bound to 10.0.0.5; data in d)",
  );
});

test("a wildcard bind is dialed at 127.0.0.1, a specific address at itself", () => {
  expect(dialableHost("0.0.0.0")).toBe("127.0.0.1");
  expect(dialableHost("::")).toBe("127.0.0.1");
  expect(dialableHost("127.0.0.2")).toBe("127.0.0.2");
  expect(dialableHost("::1")).toBe("[::1]");
  expect(dialableHost("localhost")).toBe("localhost");
});

test("a node bound to one address gives that address as its URL, and it answers there", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-host-"));
  // 127.0.0.2 is loopback on Linux but not 127.0.0.1: a URL of 127.0.0.1 would be refused.
  const node = await startLocalNode(dataDir, { HOST: "127.0.0.2" });
  try {
    expect(node.url).toStartWith("http://127.0.0.2:");
    expect(node.publicUrl).toBe(node.url);
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("every printed URL is quoted, so zsh runs the lines as printed (an unquoted ? or [::1] is a glob there)", () => {
  for (const base of ["http://127.0.0.1:8787", "http://[::1]:8787"]) {
    const lines = tryItLines(base, "t0k3n").filter((line) => line.includes("curl "));
    expect(lines.length).toBe(5);
    for (const line of lines) {
      const url = /curl (?:-X [A-Z]+ )?(\S+)/.exec(line)?.[1];
      expect(url).toMatch(/^'http:\/\/[^']*'$/);
    }
  }
});

test("a node that requires client certificates says what curl needs before the commands", () => {
  const token = `h.${Buffer.from(JSON.stringify({ iat: 0, exp: 86_400 })).toString("base64url")}.s`;
  const plain = firstRunLines("http://127.0.0.1:8787", token);
  expect(plain.some((line) => line.includes("client certificate"))).toBe(false);
  const mtls = firstRunLines("https://127.0.0.1:9443", token, { clientCertificates: true });
  const note = mtls.findIndex((line) => line.includes("requires a client certificate (TLS_CA_FILE)"));
  expect(note).toBe(1);
  expect(mtls[note]).toContain(
    "--cacert .edgewise/certs/actor-host-ca-bundle.pem --cert .edgewise/certs/gateway.pem",
  );
  expect(mtls.findIndex((line) => line.startsWith("  curl "))).toBeGreaterThan(note);
});
