// EDGEWISE_ACTIVITY_RETENTION: entries older than the retention leave the activity log at start; newer ones stay.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ActivityLogTestDatabase, activityLogDatabase } from "../actors/commerce/projections/testing.ts";
import { parseConfig } from "../shared/config/index.ts";
import { ActivityRetention } from "./activity-retention.ts";
import type { EdgewiseNode } from "./bun/node.ts";
import { startLocalNode } from "../test/support/local-node.ts";

let db: ActivityLogTestDatabase;

beforeAll(async () => {
  db = await activityLogDatabase("activity_retention");
});
afterAll(() => db.drop());

const recorded: ActivityLogTestDatabase["recorded"] = (...args) => db.recorded(...args);

test("unset by default: the log keeps everything unless the operator sets a retention", () => {
  expect(parseConfig({}).EDGEWISE_ACTIVITY_RETENTION).toBeUndefined();
  expect(parseConfig({ EDGEWISE_ACTIVITY_RETENTION: "30d" }).EDGEWISE_ACTIVITY_RETENTION).toBe(
    30 * 86_400_000,
  );
});

test("at start, domain events older than the retention are pruned, in batches; newer ones stay", async () => {
  const day = 86_400_000;
  await recorded("OrderPlaced", 2_500, 31 * day, "old");
  await recorded("StockChanged", 7, 29 * day, "recent");
  const retention = new ActivityRetention(db.log, {
    keepMs: 30 * day,
    onError: (error) => {
      throw error;
    },
  });
  retention.start();
  await retention.prune();
  await retention.stop();
  expect(retention.pruned).toBe(2_500);
  expect(await db.typesLeft()).toEqual({ StockChanged: 7 });
});

test("a node with EDGEWISE_ACTIVITY_RETENTION prunes as it starts; one without keeps everything", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-activity-retention-"));
  const start = (retention?: string) =>
    startLocalNode(dataDir, retention ? { EDGEWISE_ACTIVITY_RETENTION: retention } : {});
  const ids = async (node: EdgewiseNode) =>
    (await node.sql`SELECT id FROM activity_log WHERE id LIKE 'aged-%' ORDER BY id`).map(
      (r) => r.id as string,
    );
  try {
    let node = await start();
    try {
      await node.sql`
        INSERT INTO activity_log (id, type, source, time, envelope, recorded_at) VALUES
          ('aged-40d', 'OrderPlaced', 'edgewise://test', now(), '{}'::jsonb, now() - interval '40 days'),
          ('aged-1d', 'OrderPlaced', 'edgewise://test', now(), '{}'::jsonb, now() - interval '1 day')`;
    } finally {
      await node.stop();
    }
    node = await start();
    try {
      await Bun.sleep(200);
      expect(await ids(node)).toEqual(["aged-1d", "aged-40d"]);
    } finally {
      await node.stop();
    }
    node = await start("30d");
    try {
      for (let i = 0; i < 100 && (await ids(node)).length > 1; i++) await Bun.sleep(50);
      expect(await ids(node)).toEqual(["aged-1d"]);
    } finally {
      await node.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
