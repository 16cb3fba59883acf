// A node refused for a setting it reads from the environment makes nothing first: the same line and exit code, no data dir.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { denoEntryCommand } from "../test/e2e/process.ts";
import { issueCert, makeCa } from "./local/certs/openssl.ts";

const root = resolve(import.meta.dir, "..");
const work = mkdtempSync(join(tmpdir(), "edgewise-data-dir-config-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const bunEntry = [process.execPath, join(root, "edge/entries/bun.ts")];

/**
 * Starts an entry as an operator would, on a data dir nothing has made yet (nor its parents), with `env` added;
 * returns its exit code, its `could not start` line, and whether the first dir it would make exists afterwards.
 */
async function refusedStart(name: string, env: Record<string, string>, command = bunEntry) {
  const first = join(work, name);
  const child = Bun.spawn(command, {
    cwd: root,
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: "0",
      EDGEWISE_DATA_DIR: join(first, "nested", ".edgewise"),
      NO_COLOR: "1",
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 45_000,
  });
  const code = await child.exited;
  const stderr = await new Response(child.stderr).text();
  return {
    code,
    line: stderr.slice(stderr.indexOf("[edgewise] could not start")).trim(),
    made: existsSync(first),
  };
}

const gatewaySettings = {
  ACTOR_HOST_URL: "http://127.0.0.1:9",
  ACTOR_HOST_SECRET: "data-dir-config-secret-3e9b7a1f5c2d8064",
};

describe("a start refused for its settings leaves no data dir, and says what it said before", () => {
  test.each([
    [
      "a gateway without its actor host's database and queue",
      gatewaySettings,
      "Invalid configuration:\n  a gateway (ACTOR_HOST_URL) serves commerce on its actor host's database and queue: set DATABASE_URL and QSTASH_URL as the actor host has them",
    ],
    [
      "a bad TRUSTED_PROXIES entry",
      { TRUSTED_PROXIES: "10.0.0.0/8,banana" },
      'TRUSTED_PROXIES: "banana" is not an IP address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)',
    ],
    [
      "a bad INBOUND_WEBHOOK_SECRETS entry",
      { INBOUND_WEBHOOK_SECRETS: "supplier=not-a-secret" },
      "INBOUND_WEBHOOK_SECRETS is written source=whsec_…,source2=whsec_…",
    ],
    [
      "a bad EDGEWISE_TRACE_SAMPLE_READS",
      { EDGEWISE_TRACE_SAMPLE_READS: "often" },
      "EDGEWISE_TRACE_SAMPLE_READS must be a share of reads from 0 to 1 (e.g. 0.1) or a rate (e.g. 10/s)",
    ],
    [
      "a bad OTEL_RESOURCE_ATTRIBUTES entry",
      { OTEL_RESOURCE_ATTRIBUTES: "no-equals-sign" },
      "OTEL_RESOURCE_ATTRIBUTES: entry 1 is not key=value",
    ],
  ] as const)(
    "%s: exit 78",
    async (name, env, message) => {
      const refused = await refusedStart(name.replaceAll(" ", "-"), env);
      expect(refused).toEqual({
        code: 78,
        line: `[edgewise] could not start: config.invalid: ${message}`,
        made: false,
      });
    },
    60_000,
  );

  test("a Deno node that would listen with TLS: exit 78 naming TLS_CERT_FILE, refused before its certificate is read", async () => {
    // Real files, so the refusal is the listener's, as it was when the node reached it last.
    const certs = mkdtempSync(join(work, "certs-"));
    const ca = makeCa({ cert: join(certs, "ca.pem"), key: join(certs, "ca.key"), commonName: "test ca" });
    const leaf = issueCert({
      cert: join(certs, "node.pem"),
      key: join(certs, "node.key"),
      ca,
      commonName: "node",
      sans: ["127.0.0.1"],
      usage: ["serverAuth"],
    });
    const refused = await refusedStart(
      "deno-tls",
      { TLS_CERT_FILE: leaf.cert, TLS_KEY_FILE: leaf.key },
      denoEntryCommand(root),
    );
    expect(refused).toEqual({
      code: 78,
      line: "[edgewise] could not start: config.invalid: TLS_CERT_FILE: a TLS listener is Bun-only for now (this adapter serves plain HTTP, and Deno.serve cannot request the client certificates TLS_CA_FILE would ask for); run this node on Bun or terminate TLS in front of it",
      made: false,
    });
  }, 60_000);
});
