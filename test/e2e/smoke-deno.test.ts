// The gateway smoke test on Deno: `deno run edge/entries/deno.ts` (node:sqlite, Deno.serve, PGlite, broker).
import { test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startProcess } from "./process.ts";
import { gatewaySmoke } from "./smoke.ts";

const root = resolve(import.meta.dir, "../..");

test("smoke on Deno: authentication, rate limit, actor ask", async () => {
  const port = freePort();
  const server = await startProcess(
    [
      join(root, "node_modules/.bin/deno"),
      "run",
      "--allow-all",
      "--no-lock",
      join(root, "edge/entries/deno.ts"),
    ],
    {
      cwd: root,
      env: {
        PORT: String(port),
        HOST: "127.0.0.1",
        RATE_LIMIT: "5/60s",
        EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-smoke-deno-")),
      },
      pattern: /admin token[^:]*: (\S+)/,
    },
  );
  try {
    await gatewaySmoke(`http://127.0.0.1:${port}`, server.match);
  } finally {
    await server.kill("SIGTERM");
  }
}, 90_000);
