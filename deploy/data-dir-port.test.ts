// A node refused for a busy port makes nothing first: no data dir, no secrets, no PGlite files; an existing dir is left as it was.
import { afterAll, afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../shared/config/index.ts";
import { restartablePort } from "../test/support/ports.ts";
import { startNode } from "./bun/node.ts";
import { referenceSystem } from "./reference.ts";
import { startFailureLine } from "./start-failure.ts";

const work = mkdtempSync(join(tmpdir(), "edgewise-data-dir-port-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const held: Array<{ stop: (force?: boolean) => void }> = [];
afterEach(() => {
  for (const server of held.splice(0)) server.stop(true);
});

/** Another process's listener on a loopback port (as a second node, or anything else, would hold it). */
function holdPort(): number {
  const port = restartablePort();
  held.push(Bun.serve({ port, hostname: "127.0.0.1", fetch: () => new Response("someone else") }));
  return port;
}

/** Starts a node on `port` and `dataDir`, expecting the refusal a busy port gets; its line, as `npm start` prints it. */
async function refusedStart(port: number, dataDir: string): Promise<string> {
  const config = parseConfig({ HOST: "127.0.0.1", PORT: String(port), EDGEWISE_DATA_DIR: dataDir });
  const error = await startNode({ config, ...referenceSystem(), log: () => {} }).then(
    async (node) => {
      await node.stop();
      return undefined;
    },
    (thrown: unknown) => thrown,
  );
  expect((error as { code?: string } | undefined)?.code).toBe("EADDRINUSE");
  return startFailureLine(error, config);
}

test("a first start on a port in use is refused before it makes its data dir (nor its parents)", async () => {
  const port = holdPort();
  const dataDir = join(work, "first", "nested", ".edgewise");
  expect(await refusedStart(port, dataDir)).toBe(`port ${port} is in use: stop what holds it, or set PORT`);
  expect(existsSync(join(work, "first"))).toBe(false);
}, 60_000);

test("an existing data dir is left as it was: no secrets, no pglite/, no lock files added", async () => {
  const port = holdPort();
  const dataDir = join(work, "existing");
  mkdirSync(dataDir, { mode: 0o700 });
  writeFileSync(join(dataDir, "operator-notes"), "kept", { mode: 0o600 });
  await refusedStart(port, dataDir);
  expect(readdirSync(dataDir)).toEqual(["operator-notes"]);
}, 60_000);
