// Rotating the broker's QSTASH_TOKEN without a cutover: QSTASH_PREVIOUS_TOKEN keeps the old token accepted until unset.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Started, startProcess } from "../../../test/e2e/process.ts";

const dataDir = mkdtempSync(join(tmpdir(), "edgewise-broker-token-"));
const oldToken = `old_${crypto.randomUUID()}`;
const newToken = `new_${crypto.randomUUID()}`;
let broker: Started | undefined;
afterAll(async () => {
  await broker?.kill("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
});

async function restart(settings: Record<string, string>): Promise<Started> {
  await broker?.kill("SIGTERM");
  broker = await startProcess([process.execPath, join(import.meta.dir, "main.ts")], {
    cwd: import.meta.dir,
    env: {
      DATABASE_URL: "",
      EDGEWISE_DATA_DIR: dataDir,
      QSTASH_PORT: "0",
      QSTASH_PREVIOUS_TOKEN: "",
      ...settings,
    },
    pattern: /broker running at (\S+)/,
    timeoutMs: 30_000,
  });
  return broker;
}

const status = async (started: Started, token: string) =>
  (await fetch(`${started.match}/v2/queues`, { headers: { authorization: `Bearer ${token}` } })).status;

test("the old token works through the rotation, and is refused once QSTASH_PREVIOUS_TOKEN is unset", async () => {
  let started = await restart({ QSTASH_TOKEN: oldToken });
  expect([await status(started, oldToken), await status(started, newToken)]).toEqual([200, 401]);

  started = await restart({ QSTASH_TOKEN: newToken, QSTASH_PREVIOUS_TOKEN: oldToken });
  expect([await status(started, oldToken), await status(started, newToken)]).toEqual([200, 200]);
  expect(await status(started, "neither")).toBe(401);
  expect(started.output()).toContain("QSTASH_PREVIOUS_TOKEN is still accepted");
  expect(started.output()).not.toContain(oldToken);

  started = await restart({ QSTASH_TOKEN: newToken });
  expect([await status(started, oldToken), await status(started, newToken)]).toEqual([401, 200]);
  expect(started.output()).not.toContain("QSTASH_PREVIOUS_TOKEN");
}, 120_000);

test.each([
  [{ QSTASH_PREVIOUS_TOKEN: oldToken }, "set QSTASH_TOKEN to the new token"],
  [{ QSTASH_TOKEN: newToken, QSTASH_PREVIOUS_TOKEN: newToken }, "must be the token being replaced"],
])(
  "a previous token that cannot be one is refused at start (exit 78), never printed",
  async (settings, said) => {
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "main.ts")], {
      env: {
        ...process.env,
        DATABASE_URL: "",
        EDGEWISE_DATA_DIR: dataDir,
        QSTASH_PORT: "0",
        QSTASH_TOKEN: "",
        ...settings,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const started = setTimeout(() => child.kill(), 15_000);
    const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
    clearTimeout(started);
    expect(code).toBe(78);
    expect(stderr).toContain(said);
    expect(stderr).not.toContain(oldToken);
    expect(stderr).not.toContain(newToken);
  },
);
