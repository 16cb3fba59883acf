// A node warns at start when its inbox forgets handled ids sooner than the queue may redeliver them.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { redeliveryHorizonMs } from "../actors/queue/retry-policy.ts";
import { startLocalNode } from "../test/support/local-node.ts";

const minute = 60_000;
const day = 86_400_000;

test("the backoff spreads 3 retries over about 33 minutes, and 20 over about 16 days", () => {
  expect(redeliveryHorizonMs(0)).toBe(0);
  expect(redeliveryHorizonMs(3)).toBeGreaterThan(32 * minute);
  expect(redeliveryHorizonMs(3)).toBeLessThan(34 * minute);
  expect(redeliveryHorizonMs(20)).toBeGreaterThan(16 * day);
  expect(redeliveryHorizonMs(20)).toBeLessThan(17 * day);
});

test("with 20 retries the default 7-day inbox is too short, and the node says so; with 3 it says nothing", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-inbox-horizon-"));
  const warning = "EDGEWISE_INBOX_RETENTION is shorter than the queue's retries";
  const linesOf = async (env: Record<string, string>) => {
    const lines: string[] = [];
    const node = await startLocalNode(dataDir, env, { log: (line) => lines.push(line) });
    await node.stop();
    return lines;
  };
  try {
    expect(
      (await linesOf({ EDGEWISE_DELIVERY_RETRIES: "20" })).filter((l) => l.includes(warning)),
    ).toHaveLength(1);
    expect((await linesOf({})).filter((l) => l.includes(warning))).toEqual([]);
    // A retention past the horizon is enough.
    const kept = await linesOf({ EDGEWISE_DELIVERY_RETRIES: "20", EDGEWISE_INBOX_RETENTION: "17d" });
    expect(kept.filter((l) => l.includes(warning))).toEqual([]);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 90_000);
