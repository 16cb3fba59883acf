// EDGEWISE_WEBHOOK_ATTEMPT_RETENTION: outbound webhook attempts older than it leave the attempt log; newer ones stay.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testStore } from "../actors/commerce/webhooks/test-support.ts";
import { parseConfig } from "../shared/config/index.ts";
import type { EdgewiseNode } from "./bun/node.ts";
import { startLocalNode } from "../test/support/local-node.ts";

const day = 86_400_000;
let db: Awaited<ReturnType<typeof testStore>>;

beforeAll(async () => {
  db = await testStore("attempt_retention");
});
afterAll(() => db?.close());

/** `count` attempts of subscription `sub`, made `ageDays` ago, one event each (`<prefix>-<n>`). */
const attempts = (
  sql: EdgewiseNode["sql"] | typeof db.sql,
  sub: string,
  prefix: string,
  count: number,
  ageDays: number,
) =>
  sql`
    INSERT INTO webhook_deliveries (subscription_id, event_id, attempt, status_code, outcome, error, at)
    SELECT ${sub}, ${prefix} || '-' || n, 1, 200, 'delivered', NULL, now() - make_interval(days => ${ageDays})
    FROM generate_series(1, ${count}) AS n`;

test("30 days by default; shorter than the queue's 20 days of retries is refused", () => {
  expect(parseConfig({}).EDGEWISE_WEBHOOK_ATTEMPT_RETENTION).toBe(30 * day);
  expect(parseConfig({ EDGEWISE_WEBHOOK_ATTEMPT_RETENTION: "90d" }).EDGEWISE_WEBHOOK_ATTEMPT_RETENTION).toBe(
    90 * day,
  );
  expect(() => parseConfig({ EDGEWISE_WEBHOOK_ATTEMPT_RETENTION: "7d" })).toThrow(
    /EDGEWISE_WEBHOOK_ATTEMPT_RETENTION must be at least 21d/,
  );
});

test("on Postgres, attempts made before the cutoff are deleted in batches, oldest first; the rest stay", async () => {
  await attempts(db.sql, "whsub_old", "old", 1_250, 40);
  await attempts(db.sql, "whsub_new", "new", 7, 29);
  // Batches of 500: the prune keeps going past the first one.
  expect(await db.store.pruneAttempts(new Date(Date.now() - 30 * day), 500)).toBe(1_250);
  const left = await db.sql`SELECT subscription_id, count(*)::int AS n FROM webhook_deliveries GROUP BY 1`;
  expect(left.map((row) => ({ ...row }))).toEqual([{ subscription_id: "whsub_new", n: 7 }]);
  // The attempts kept still stop a redelivery of a delivered event.
  expect(await db.store.wasDelivered("whsub_new", "new-3")).toBe(true);
  // Found by age through an index, not by reading every attempt kept (seq scans priced out: 7 rows need none).
  const plan = await db.sql.begin(async (tx) => {
    await tx`SET LOCAL enable_seqscan = off`;
    return tx.unsafe(
      "EXPLAIN SELECT id FROM webhook_deliveries WHERE at < now() - interval '30 days' ORDER BY at LIMIT 5000",
    );
  });
  expect(plan.map((row) => Object.values(row)[0]).join("\n")).toContain("webhook_deliveries_at");
});

test("a node (embedded PGlite) prunes the attempt log as it starts, with the default retention", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-attempt-retention-"));
  const subs = async (node: EdgewiseNode) =>
    (await node.sql`SELECT DISTINCT subscription_id FROM webhook_deliveries ORDER BY 1`).map(
      (row) => row.subscription_id as string,
    );
  try {
    let node = await startLocalNode(dataDir);
    try {
      await attempts(node.sql, "whsub_aged", "aged", 30, 31);
      await attempts(node.sql, "whsub_kept", "kept", 3, 29);
    } finally {
      await node.stop();
    }
    node = await startLocalNode(dataDir);
    try {
      for (let i = 0; i < 200 && (await subs(node)).length > 1; i++) await Bun.sleep(50);
      expect(await subs(node)).toEqual(["whsub_kept"]);
    } finally {
      await node.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
