// The conformance Worker (test/conformance/cloudflare) under `wrangler dev`, driven over the control protocol.
import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import { HttpDriver } from "./http-driver.ts";

const root = join(import.meta.dir, "../..");

/**
 * Starts it on `persistTo` (kept across a `crash()`), with the variables `vars` gives for the profile version of
 * each start. wrangler runs workerd as children: a crash kills the whole group, or workerd would go on serving.
 */
export function startConformanceWorker(
  persistTo: string,
  vars: (profileVersion: 1 | 2) => Record<string, string>,
): Promise<HttpDriver> {
  return HttpDriver.start({
    name: "workerd",
    cwd: root,
    command: (profileVersion) =>
      wranglerDev({
        config: "test/conformance/cloudflare/wrangler.toml",
        persistTo,
        vars: vars(profileVersion),
      }),
    readyPattern: /Ready on https?:\/\/[\w.]+:(\d+)/,
    processGroup: true,
    env: wranglerEnv,
    startTimeoutMs: 60_000,
  });
}

/**
 * For a test file: the Worker started before its tests on a temp dir of its own (`vars` read at each start), and
 * stopped and its dir removed after them. Returns the running driver.
 */
export function conformanceWorkerPerFile(name: string, vars: () => Record<string, string>): () => HttpDriver {
  const persistTo = mkdtempSync(join(tmpdir(), `edgewise-${name}-`));
  let driver: HttpDriver | undefined;
  beforeAll(async () => {
    driver = await startConformanceWorker(persistTo, vars);
  }, 90_000);
  afterAll(async () => {
    await driver?.close();
    rmSync(persistTo, { recursive: true, force: true });
  });
  return () => {
    if (!driver) throw new Error("the conformance Worker has not started");
    return driver;
  };
}
