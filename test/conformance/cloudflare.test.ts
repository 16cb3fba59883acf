// Conformance of the Cloudflare host: Durable Objects in workerd under `wrangler dev`; a crash SIGKILLs the lot.
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import { HttpDriver } from "./http-driver.ts";
import { runConformance } from "./run.ts";

const root = join(import.meta.dir, "../..");
/** One data dir for every start: a restart must find what the killed one wrote. */
const persistTo = mkdtempSync(join(tmpdir(), "edgewise-conf-workerd-"));
afterAll(() => rmSync(persistTo, { recursive: true, force: true }));

runConformance("Durable Objects in workerd (wrangler dev)", () =>
  HttpDriver.start({
    name: "workerd",
    cwd: root,
    command: (profileVersion) =>
      wranglerDev({
        config: "test/conformance/cloudflare/wrangler.toml",
        persistTo,
        vars: { PROFILE_VERSION: String(profileVersion) },
      }),
    readyPattern: /Ready on https?:\/\/[\w.]+:(\d+)/,
    // wrangler runs workerd as children: kill the whole group, or a crash leaves workerd serving.
    processGroup: true,
    env: wranglerEnv,
    startTimeoutMs: 60_000,
  }),
);
