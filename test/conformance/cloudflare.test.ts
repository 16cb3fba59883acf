// Conformance of the Cloudflare host: Durable Objects in workerd under `wrangler dev`; a crash SIGKILLs the lot.
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpDriver } from "./http-driver.ts";
import { runConformance } from "./run.ts";

const root = join(import.meta.dir, "../..");
/** One data dir for every start: a restart must find what the killed one wrote. */
const persistTo = mkdtempSync(join(tmpdir(), "edgewise-conf-workerd-"));
afterAll(() => rmSync(persistTo, { recursive: true, force: true }));

/** A port nobody listens on now; each start takes a fresh one, so a dying workerd never holds it. */
function freePort(): number {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port as number;
  server.stop(true);
  return port;
}

runConformance("Durable Objects in workerd (wrangler dev)", () =>
  HttpDriver.start({
    name: "workerd",
    cwd: root,
    command: (profileVersion) => [
      join(root, "node_modules/.bin/wrangler"),
      "dev",
      "-c",
      "test/conformance/cloudflare/wrangler.toml",
      "--ip",
      "127.0.0.1",
      "--port",
      String(freePort()),
      "--inspector-port",
      String(freePort()),
      "--persist-to",
      persistTo,
      "--var",
      `PROFILE_VERSION:${profileVersion}`,
      "--show-interactive-dev-session=false",
    ],
    readyPattern: /Ready on https?:\/\/[\w.]+:(\d+)/,
    // wrangler runs workerd as children: kill the whole group, or a crash leaves workerd serving.
    processGroup: true,
    env: { CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    startTimeoutMs: 60_000,
  }),
);
