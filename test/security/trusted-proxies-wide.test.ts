// Security suite: TRUSTED_PROXIES wider than any proxy fleet (0.0.0.0/0) is refused on Bun, Deno and Workers.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gatewayFromEnv } from "../../edge/entries/cloudflare-gateway.ts";
import { denoEntryCommand } from "../e2e/process.ts";

const root = resolve(import.meta.dir, "../..");

// With 0.0.0.0/0 every peer was a trusted proxy: a node started, and a client that wrote a new X-Forwarded-For on
// each request was a new address each time, never held by the anonymous rate limit or the refused-credentials one.
const wide = "10.0.0.0/8,0.0.0.0/0";

describe("TRUSTED_PROXIES wider than any proxy fleet", () => {
  const entries = {
    bun: [process.execPath, join(root, "edge/entries/bun.ts")],
    deno: denoEntryCommand(root),
  };
  for (const [runtime, command] of Object.entries(entries)) {
    test(`a ${runtime} node refuses to start (78), naming the setting`, async () => {
      const child = Bun.spawn(command, {
        cwd: root,
        env: {
          ...process.env,
          PORT: "0",
          HOST: "127.0.0.1",
          EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-proxies-")),
          TRUSTED_PROXIES: wide,
        },
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
      const code = await child.exited;
      clearTimeout(timer);
      const stderr = await new Response(child.stderr).text();
      expect({
        code,
        refused: stderr.includes('TRUSTED_PROXIES: "0.0.0.0/0" is wider than any proxy fleet'),
      }).toEqual({ code: 78, refused: true });
    }, 60_000);
  }

  test("a Worker's gateway refuses it as a configuration error (its guard answers 500 naming it)", () => {
    expect(() => gatewayFromEnv({ TRUSTED_PROXIES: wide })).toThrow(
      expect.objectContaining({ code: "config.invalid" }),
    );
    expect(() => gatewayFromEnv({ TRUSTED_PROXIES: "::/0" })).toThrow(/wider than any proxy fleet/);
    expect(gatewayFromEnv({ TRUSTED_PROXIES: "10.0.0.0/8,fc00::/7" }).clientIp).toBeDefined();
  });
});
