// Inbound webhook ids leave the table of ids seen once past replay, on a node's timer, with no webhook arriving.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNode } from "../test/support/local-node.ts";
import type { EdgewiseNode } from "./bun/node.ts";

/** Inbound ids of `source` received `ageMinutes` ago, as recordInbound leaves them. */
const seen = (node: EdgewiseNode, source: string, count: number, ageMinutes: number) =>
  node.sql`
    INSERT INTO webhook_inbound_seen (source, webhook_id, received_at)
    SELECT ${source}, 'msg_' || n, now() - make_interval(mins => ${ageMinutes})
    FROM generate_series(1, ${count}) AS n`;

test("a node (embedded PGlite) forgets inbound ids past twice the tolerance as it starts, and keeps newer ones", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-inbound-retention-"));
  const sources = async (node: EdgewiseNode) =>
    (await node.sql`SELECT DISTINCT source FROM webhook_inbound_seen ORDER BY 1`).map(
      (row) => row.source as string,
    );
  try {
    let node = await startLocalNode(dataDir);
    try {
      // The webhooks stopped 11 minutes ago: past any replay, and no accepted one will come to prune them.
      await seen(node, "aged", 20, 11);
      await seen(node, "kept", 3, 9);
    } finally {
      await node.stop();
    }
    node = await startLocalNode(dataDir);
    try {
      for (let i = 0; i < 200 && (await sources(node)).length > 1; i++) await Bun.sleep(50);
      expect(await sources(node)).toEqual(["kept"]);
    } finally {
      await node.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
