// The gateway smoke test on workerd: the production Worker (root wrangler.toml) under `wrangler dev`.
import { test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import { startProcess } from "./process.ts";
import { gatewaySmoke } from "./smoke.ts";

const root = resolve(import.meta.dir, "../..");

test("smoke on workerd: authentication, rate limit, actor ask", async () => {
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  const persistTo = mkdtempSync(join(tmpdir(), "edgewise-smoke-workerd-"));
  const server = await startProcess(
    // A secret on the command line is fine for a throwaway test key; production uses `wrangler secret put`.
    wranglerDev({ persistTo, vars: { JWT_SECRET: secret, RATE_LIMIT: "5/60s" } }),
    {
      cwd: root,
      env: wranglerEnv,
      pattern: /Ready on (https?:\/\/[\w.]+:\d+)/,
      again: () => ({
        command: wranglerDev({ persistTo, vars: { JWT_SECRET: secret, RATE_LIMIT: "5/60s" } }),
      }),
    },
  );
  try {
    const token = await issueToken({ sub: "smoke", scopes: ["admin"], ttlSeconds: 300, secret });
    await gatewaySmoke(server.match, token);
  } finally {
    await server.kill();
    rmSync(persistTo, { recursive: true, force: true });
  }
}, 90_000);
