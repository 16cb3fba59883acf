// The production Worker with a bad variable: every request gets problem+json naming it, never workerd's 1101 page.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { problemContentType } from "../../shared/errors/index.ts";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import { startProcess } from "./process.ts";

const root = resolve(import.meta.dir, "../..");

test("a JWT_SECRET too short and a malformed QSTASH_URL: 500 problem+json naming them, logged once, no value", async () => {
  const persistTo = mkdtempSync(join(tmpdir(), "edgewise-config-workerd-"));
  const secret = "short-secret-value";
  const command = () => wranglerDev({ persistTo, vars: { JWT_SECRET: secret, QSTASH_URL: "not a url" } });
  const server = await startProcess(command(), {
    cwd: root,
    env: wranglerEnv,
    pattern: /Ready on (https?:\/\/[\w.]+:\d+)/,
    again: () => ({ command: command() }),
  });
  try {
    for (const path of ["/healthz", "/v1/counters/a/increment", "/healthz"]) {
      const response = await fetch(`${server.match}${path}`);
      expect(response.status).toBe(500);
      expect(response.headers.get("content-type")).toBe(problemContentType);
      const problem = (await response.json()) as { code: string; detail: string; errors?: unknown[] };
      expect(problem.code).toBe("config.invalid");
      expect(problem.detail).toContain("JWT_SECRET must be at least 32 characters");
      expect(problem.detail).toContain("QSTASH_URL must be a URL");
      expect(JSON.stringify(problem)).not.toContain(secret);
      expect(JSON.stringify(problem)).not.toContain("not a url");
    }
    // Logged once for the isolate, however many requests it refused. wrangler relays workerd's log lines to its
    // stdout a while after the answers (seconds on a loaded machine), so wait for the first, then for any stragglers.
    const loggedLines = () =>
      server
        .output()
        .split("\n")
        .filter((line) => line.includes("configuration is invalid"));
    for (const deadline = Date.now() + 15_000; loggedLines().length === 0 && Date.now() < deadline; )
      await Bun.sleep(100);
    await Bun.sleep(1_000);
    expect(loggedLines()).toHaveLength(1);
    expect(server.output()).not.toContain(secret);
  } finally {
    await server.kill();
    rmSync(persistTo, { recursive: true, force: true });
  }
}, 90_000);
