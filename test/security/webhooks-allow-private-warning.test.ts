// Security suite: a Bun or Deno node started with WEBHOOKS_ALLOW_PRIVATE=1 warns that webhooks may reach private addresses.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { allowPrivateWarning } from "../../deploy/commerce.ts";
import { denoEntryCommand, freePort, startProcess } from "../e2e/process.ts";

const root = resolve(import.meta.dir, "../..");

const entries = {
  bun: [process.execPath, join(root, "edge/entries/bun.ts")],
  deno: denoEntryCommand(root),
};

// One data dir for the three starts, one after the other: the warning is said at every start, and each fresh one
// cost a start its embedded PGlite's first setup (seconds, most of the start).
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-allow-private-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** The warning line a node printed before it served (the admin token is printed once it does), if any. */
async function warningAtStart(command: string[], allowPrivate: string): Promise<string | undefined> {
  const env = () => ({
    PORT: String(freePort()),
    HOST: "127.0.0.1",
    EDGEWISE_DATA_DIR: dataDir,
    WEBHOOKS_ALLOW_PRIVATE: allowPrivate,
  });
  const node = await startProcess(command, {
    cwd: root,
    env: env(),
    pattern: /admin token/,
    again: () => ({ command, env: env() }),
  });
  // The warning goes to stderr and the token to stdout, read apart: the token can be seen first, and a line can be
  // there half-written. Where a warning is due, wait (10 s at most) for it whole.
  const warning = () =>
    node
      .output()
      .split("\n")
      .find((line) => line.includes("WEBHOOKS_ALLOW_PRIVATE=1") && parses(line));
  try {
    for (const deadline = Date.now() + 10_000; allowPrivate === "1" && !warning() && Date.now() < deadline; )
      await Bun.sleep(50);
    return warning();
  } finally {
    await node.kill();
  }
}

function parses(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

// Before, a node started on it without a word: nothing told an operator who left it on outside development.
for (const [runtime, command] of Object.entries(entries)) {
  test(`a ${runtime} node warns at start while WEBHOOKS_ALLOW_PRIVATE=1`, async () => {
    const line = await warningAtStart(command, "1");
    expect(line && JSON.parse(line)).toMatchObject({ level: "warn", msg: allowPrivateWarning });
  }, 90_000);
}

test("a node with WEBHOOKS_ALLOW_PRIVATE=0 says nothing of it", async () => {
  expect(await warningAtStart(entries.bun, "0")).toBeUndefined();
}, 90_000);
