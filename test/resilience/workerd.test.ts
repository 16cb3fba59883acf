// The resilience cases inside workerd: a Worker under `wrangler dev` runs them per request; Bun checks each passed.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startProcess } from "../e2e/process.ts";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import type { CaseResult } from "./check.ts";
import { expectAllPassed } from "./results.ts";

const root = resolve(import.meta.dir, "../..");

test("every resilience case passes inside workerd", async () => {
  const persistTo = mkdtempSync(join(tmpdir(), "edgewise-resilience-workerd-"));
  const worker = await startProcess(
    wranglerDev({ config: "test/resilience/cloudflare/wrangler.toml", persistTo }),
    {
      cwd: root,
      env: wranglerEnv,
      pattern: /Ready on (https?:\/\/[\w.]+:\d+)/,
    },
  );
  try {
    const response = await fetch(`${worker.match}/cases`);
    expect(response.status).toBe(200);
    expectAllPassed("workerd", (await response.json()) as CaseResult[]);
  } finally {
    await worker.kill();
    rmSync(persistTo, { recursive: true, force: true });
  }
}, 90_000);
