// Security suite: settings that would quietly weaken a node are refused at start, on Bun, Deno and (where read) Workers.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gatewayFromEnv } from "../../edge/entries/cloudflare-gateway.ts";
import { denoEntryCommand } from "../e2e/process.ts";

const root = resolve(import.meta.dir, "../..");
const entries = {
  bun: [process.execPath, join(root, "edge/entries/bun.ts")],
  deno: denoEntryCommand(root),
};

/** A node started with `env` on `command`: its exit code and stderr. One that starts is the failure: it is killed. */
async function started(command: string[], env: Record<string, string>) {
  const child = Bun.spawn(command, {
    cwd: root,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-weakening-")),
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, stderr: await new Response(child.stderr).text() };
}

/** On each runtime, a node started with `env` exits 78 and says `refusal`. */
function refusedOnEveryNode(env: Record<string, string>, refusal: string) {
  for (const [runtime, command] of Object.entries(entries)) {
    test(`a ${runtime} node refuses to start (78), naming the setting`, async () => {
      const { code, stderr } = await started(command, env);
      expect({ code, refused: stderr.includes(refusal) }).toEqual({ code: 78, refused: true });
    }, 60_000);
  }
}

// With 0.0.0.0/0 every peer was a trusted proxy: a node started, and a client that wrote a new X-Forwarded-For on
// each request was a new address each time, never held by the anonymous rate limit or the refused-credentials one.
describe("TRUSTED_PROXIES wider than any proxy fleet", () => {
  const wide = "10.0.0.0/8,0.0.0.0/0";
  refusedOnEveryNode({ TRUSTED_PROXIES: wide }, 'TRUSTED_PROXIES: "0.0.0.0/0" is wider than any proxy fleet');

  test("a Worker's gateway refuses it as a configuration error (its guard answers 500 naming it)", () => {
    expect(() => gatewayFromEnv({ TRUSTED_PROXIES: wide })).toThrow(
      expect.objectContaining({ code: "config.invalid" }),
    );
    expect(() => gatewayFromEnv({ TRUSTED_PROXIES: "::/0" })).toThrow(/wider than any proxy fleet/);
    expect(gatewayFromEnv({ TRUSTED_PROXIES: "10.0.0.0/8,fc00::/7" }).clientIp).toBeDefined();
  });
});

// A Worker's API Shield check: a node started on it, took it as said, and admitted requests with no certificate.
describe("REQUIRE_CLIENT_CERT or CLIENT_CERT_FINGERPRINTS on a node", () => {
  refusedOnEveryNode({ REQUIRE_CLIENT_CERT: "1" }, "REQUIRE_CLIENT_CERT is a Worker's setting");

  test("CLIENT_CERT_FINGERPRINTS alone is refused the same way (a Bun node)", async () => {
    const { code, stderr } = await started(entries.bun, { CLIENT_CERT_FINGERPRINTS: "ab12" });
    expect({ code, refused: stderr.includes("CLIENT_CERT_FINGERPRINTS is a Worker's setting") }).toEqual({
      code: 78,
      refused: true,
    });
  }, 60_000);

  test("a Worker takes it: its gateway checks the client certificate", () => {
    expect(gatewayFromEnv({ REQUIRE_CLIENT_CERT: "1" }).clientCert).toEqual({ fingerprints: [] });
  });
});

// A 32-character JWT_SECRET of one letter passed the length check, and anyone could sign tokens with it.
describe("an obviously weak HMAC secret", () => {
  const weak = "Zq".repeat(20);
  for (const [runtime, command] of Object.entries(entries)) {
    test(`a ${runtime} node refuses JWT_SECRET=<one piece repeated> (78), naming it, never printing it`, async () => {
      const { code, stderr } = await started(command, { JWT_SECRET: weak });
      expect({
        code,
        refused: stderr.includes("JWT_SECRET is too weak to sign with"),
        printed: stderr.includes("ZqZq"),
      }).toEqual({ code: 78, refused: true, printed: false });
    }, 60_000);
  }

  test("a Worker refuses it as a configuration error (its guard answers 500 naming it)", () => {
    expect(() => gatewayFromEnv({ JWT_SECRET: "a".repeat(32) })).toThrow(
      /JWT_SECRET is too weak to sign with/,
    );
    expect(gatewayFromEnv({ JWT_SECRET: crypto.randomUUID() }).auth).toBeDefined();
  });
});
