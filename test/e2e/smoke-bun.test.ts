// The gateway smoke test on Bun: `bun edge/entries/bun.ts`, with the admin token it prints.
import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startProcess } from "./process.ts";
import { gatewaySmoke } from "./smoke.ts";

const root = resolve(import.meta.dir, "../..");

test("smoke on Bun: authentication, rate limit, actor ask", async () => {
  let port = freePort();
  const env = () => ({
    PORT: String(port),
    HOST: "127.0.0.1",
    RATE_LIMIT: "5/60s",
    EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-smoke-bun-")),
  });
  const command = [process.execPath, join(root, "edge/entries/bun.ts")];
  const server = await startProcess(command, {
    cwd: root,
    env: env(),
    pattern: /admin token[^:]*: (\S+)/,
    again: () => {
      port = freePort();
      return { command, env: env() };
    },
  });
  try {
    expect(server.match.split(".")).toHaveLength(3);
    await gatewaySmoke(`http://127.0.0.1:${port}`, server.match);
  } finally {
    await server.kill("SIGTERM");
  }
}, 90_000);
