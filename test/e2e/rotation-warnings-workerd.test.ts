// The production Worker during rotations: each `*_PREVIOUS_*` it honours is warned of once per isolate, as a node does at start.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import { startProcess } from "./process.ts";

const root = resolve(import.meta.dir, "../..");
const random = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");

test("JWT_, METRICS_ and CONSOLE_SESSION_PREVIOUS_*: one warning each for the isolate, naming them, no value", async () => {
  const persistTo = mkdtempSync(join(tmpdir(), "edgewise-rotation-workerd-"));
  const vars = {
    JWT_SECRET: random(),
    JWT_PREVIOUS_SECRET: random(),
    METRICS_TOKEN: random(),
    METRICS_PREVIOUS_TOKEN: random(),
    CONSOLE_SESSION_SECRET: random(),
    CONSOLE_SESSION_PREVIOUS_SECRET: random(),
  };
  const server = await startProcess(wranglerDev({ persistTo, vars }), {
    cwd: root,
    env: wranglerEnv,
    pattern: /Ready on (https?:\/\/[\w.]+:\d+)/,
    again: () => ({ command: wranglerDev({ persistTo, vars }) }),
  });
  try {
    for (let i = 0; i < 3; i++) expect((await fetch(`${server.match}/healthz`)).status).toBe(200);
    const said = (name: string) =>
      server
        .output()
        .split("\n")
        .filter((line) => line.includes(`${name} are still accepted`));
    const names = ["JWT_PREVIOUS_SECRET", "METRICS_PREVIOUS_TOKEN", "CONSOLE_SESSION_PREVIOUS_SECRET"];
    // wrangler relays workerd's log lines a while after the answers: wait for them, then for any stragglers.
    for (
      const deadline = Date.now() + 15_000;
      names.some((name) => said(name).length === 0) && Date.now() < deadline;
    )
      await Bun.sleep(100);
    await Bun.sleep(1_000);
    expect(names.map((name) => [name, said(name).length])).toEqual(names.map((name) => [name, 1]));
    for (const value of Object.values(vars)) expect(server.output()).not.toContain(value);
  } finally {
    await server.kill();
    rmSync(persistTo, { recursive: true, force: true });
  }
}, 90_000);
