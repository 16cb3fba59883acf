// The data dir's readiness check: a node whose data dir stops taking files answers /readyz 503 until it does again.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNode } from "../test/support/local-node.ts";
import { dataDirCheck } from "./data-dir-check.ts";

test("the check writes a probe and leaves nothing; a path that takes no file fails it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-dir-check-"));
  try {
    await dataDirCheck(dir, true).check(new AbortController().signal);
    expect(readdirSync(dir)).toEqual([]);
    // A "directory" that is a file (a mount gone, replaced by something else): nothing can be written under it.
    writeFileSync(join(dir, "not-a-dir"), "x");
    const failing = dataDirCheck(join(dir, "not-a-dir"), true);
    expect(failing).toMatchObject({ name: "dataDir", critical: true, failedAs: "unwritable" });
    await expect(failing.check(new AbortController().signal)).rejects.toThrow();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("/readyz: 503 with dataDir unwritable while the data dir is gone, 200 once it is back", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-dir-ready-"));
  const away = `${dataDir}.away`;
  const node = await startLocalNode(dataDir);
  type Ready = {
    status: string;
    dependencies: Record<string, { ok: boolean; critical: boolean; reason?: string }>;
  };
  const ready = async () => {
    const response = await fetch(`${node.url}/readyz`);
    return { status: response.status, body: (await response.json()) as Ready };
  };
  try {
    const up = await ready();
    expect(up.status).toBe(200);
    expect(up.body.dependencies.dataDir).toMatchObject({ ok: true, critical: true });
    // The node's open files go on, but no new file can be made where the data dir was (an unmounted volume, a
    // cleanup job): /readyz must say so, not 200 while every write turn fails.
    renameSync(dataDir, away);
    await Bun.sleep(1_100); // past the reuse of the last all-up result (1 s)
    const down = await ready();
    expect(down.status).toBe(503);
    expect(down.body.status).toBe("unavailable");
    expect(down.body.dependencies.dataDir).toMatchObject({ ok: false, critical: true, reason: "unwritable" });
    renameSync(away, dataDir);
    const back = await ready();
    expect(back.status).toBe(200);
    expect(back.body.dependencies.dataDir?.ok).toBe(true);
    expect(existsSync(join(dataDir, ".readyz-probe"))).toBe(false);
  } finally {
    if (existsSync(away)) renameSync(away, dataDir);
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
