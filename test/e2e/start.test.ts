// `npm start` on embedded defaults: a Bun process that answers /healthz and keeps data across a restart.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");

async function start(dataDir: string, port: number) {
  const child = Bun.spawn([process.execPath, join(root, "edge/entries/bun.ts")], {
    cwd: root,
    env: { ...process.env, EDGEWISE_DATA_DIR: dataDir, PORT: String(port) },
    stdout: "pipe",
    stderr: "pipe",
  });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      // not up yet
    }
    await Bun.sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error(`did not start: ${await new Response(child.stderr).text()}`);
}

describe("npm start", () => {
  test("answers /healthz, and state survives a SIGKILL and restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "edgewise-start-"));
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const first = await start(dataDir, port);
    const inc = () =>
      fetch(`http://127.0.0.1:${port}/v1/counters/e2e/increment`, {
        method: "POST",
        body: '{"by":3}',
        headers: { "content-type": "application/json" },
      });
    expect(await (await inc()).json()).toEqual({ count: 3 });
    first.kill("SIGKILL");
    await first.exited;
    const second = await start(dataDir, port);
    try {
      expect(await (await inc()).json()).toEqual({ count: 6 });
    } finally {
      second.kill("SIGTERM");
      await second.exited;
    }
  }, 60_000);

  test("refuses bad configuration with exit code 78 and names the variable", async () => {
    const child = Bun.spawn([process.execPath, join(root, "edge/entries/bun.ts")], {
      cwd: root,
      env: { ...process.env, PORT: "eighty" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await child.exited).toBe(78);
    expect(await new Response(child.stderr).text()).toContain("PORT must be a whole number");
  });
});
