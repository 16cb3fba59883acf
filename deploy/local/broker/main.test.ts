// `npm run broker` refuses a bad setting before it starts: one line naming it, exit code 78, as a node does.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dataDir = mkdtempSync(join(tmpdir(), "edgewise-broker-cli-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function start(settings: Record<string, string>) {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "main.ts")], {
    env: { ...process.env, DATABASE_URL: "", EDGEWISE_DATA_DIR: dataDir, QSTASH_PORT: "0", ...settings },
    stdout: "pipe",
    stderr: "pipe",
  });
  // A broker that starts when it should have refused would run until killed: end it, so the test fails, not hangs.
  const started = setTimeout(() => child.kill(), 15_000);
  void child.exited.then(() => clearTimeout(started));
  const [code, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  return { code, stdout, lines: stderr.trim().split("\n") };
}

describe("the broker's CLI settings", () => {
  test.each([
    [{ TLS_CA_FILE: "/nonexistent/ca.pem" }, "TLS_CA_FILE (mutual TLS) needs TLS_CERT_FILE and TLS_KEY_FILE"],
    [{ TLS_CERT_FILE: "/nonexistent/cert.pem" }, "TLS_CERT_FILE and TLS_KEY_FILE go together"],
    [{ QSTASH_PORT: "eighty" }, 'QSTASH_PORT is not valid (got "eighty")'],
    [{ QSTASH_TIME_SCALE: "0" }, 'QSTASH_TIME_SCALE is not valid (got "0")'],
    [{ EDGEWISE_PGLITE_SYNC: "SOMETIMES" }, "EDGEWISE_PGLITE_SYNC must be FULL or NORMAL"],
  ])("%p is refused with one line and exit code 78", async (settings, reason) => {
    const { code, stdout, lines } = await start(settings);
    expect(code).toBe(78);
    expect(lines[0]).toStartWith("[edgewise] could not start: config.invalid:");
    expect(lines.join("\n")).toContain(reason);
    // Refused before it listened or opened anything: no broker line, no stack.
    expect(stdout).not.toContain("broker running");
    expect(lines.join("\n")).not.toContain("    at ");
  });

  // The qstash dev token is public: a broker reachable beyond this machine with it lets anyone publish, and the
  // broker signs and delivers what they publish (over its broker-role certificate, past an actor host's mutual TLS).
  test.each([
    [{ QSTASH_HOST: "0.0.0.0" }],
    [{ QSTASH_HOST: "::" }],
    [
      {
        QSTASH_HOST: "10.1.2.3",
        QSTASH_TOKEN: "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
      },
    ],
  ])(
    "listening beyond loopback with the public dev token (%p) is refused with exit code 78",
    async (settings) => {
      const { code, stdout, lines } = await start(settings);
      expect(code).toBe(78);
      expect(lines[0]).toStartWith("[edgewise] could not start: config.invalid:");
      expect(lines.join("\n")).toContain("QSTASH_TOKEN");
      expect(stdout).not.toContain("broker running");
    },
  );

  test("a busy port names the port and QSTASH_PORT, the broker's setting, not a node's PORT", async () => {
    const holder = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("taken") });
    try {
      const { code, stdout, lines } = await start({ QSTASH_PORT: String(holder.port) });
      expect(code).toBe(1);
      expect(stdout).not.toContain("broker running");
      expect(lines[0]).toBe(
        `[edgewise] could not start: port ${holder.port} is in use: stop what holds it, or set QSTASH_PORT`,
      );
    } finally {
      holder.stop(true);
    }
  });
});
