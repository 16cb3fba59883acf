// An embedded PGlite whose queue is elsewhere (QSTASH_URL) still gets its tables vacuumed: PGlite has no autovacuum.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../test/broker/helpers.ts";
import { eventually } from "../test/commerce/client.ts";
import type { EdgewiseNode } from "./bun/node.ts";
import { type Broker, startBroker } from "./local/broker/index.ts";
import { startLocalNode } from "../test/support/local-node.ts";

const brokerSchema = uniqueSchema("embedded_upkeep_broker");
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-upkeep-"));
let broker: Broker;
let node: EdgewiseNode;

beforeAll(async () => {
  // The queue on the real Postgres, in a process of its own as far as the node knows: reached by QSTASH_URL.
  broker = await startBroker({
    port: 0,
    databaseUrl: TEST_DATABASE_URL,
    schema: brokerSchema,
    log: () => {},
  });
  node = await startLocalNode(
    dataDir,
    {
      QSTASH_URL: broker.url,
      QSTASH_TOKEN: broker.token,
      QSTASH_CURRENT_SIGNING_KEY: broker.currentSigningKey,
      QSTASH_NEXT_SIGNING_KEY: broker.nextSigningKey,
    },
    { upkeepEveryMs: 200 },
  );
}, 30_000);
afterAll(async () => {
  await node?.stop();
  await broker?.stop();
  await dropSchema(brokerSchema);
  rmSync(dataDir, { recursive: true, force: true });
});

test("300 balance sets: the node's upkeep analyzes the journal PGlite has no autovacuum for, and the account's table stays one page", async () => {
  expect(node.broker).toBeUndefined();
  const put = (balanceCents: number) =>
    fetch(`${node.url}/v1/accounts/upkeep-customer`, {
      method: "PUT",
      headers: { authorization: `Bearer ${node.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ balanceCents }),
    });
  for (let i = 0; i < 300; i++) expect((await put(i)).status).toBe(200);
  // Each set journals a transaction: 300 rows inserted, which no HOT pruning takes back, past the analyze threshold
  // (50 + 10% of the live rows). PGlite has no autovacuum, so only the node's upkeep analyzes it. (The account's own
  // dead row versions are pruned on their page as they are made, and whether they pass the vacuum threshold between
  // two runs depends on the row's width: billing_accounts is no longer a deterministic witness.)
  const upkeep = async () => {
    const [row] = await node.sql<Array<{ analyzes: number; vacuums: number }>>`
      SELECT analyze_count::int AS analyzes, vacuum_count::int AS vacuums
      FROM pg_stat_user_tables WHERE relname = 'billing_transactions'`;
    return row ?? { analyzes: 0, vacuums: 0 };
  };
  await eventually(async () => (await upkeep()).analyzes > 0, "billing_transactions to be analyzed", 10_000);
  // And the account row's versions never bloat its table: pruned or vacuumed, it stays one page.
  const [size] = await node.sql<Array<{ bytes: number }>>`
    SELECT pg_relation_size('billing_accounts')::int AS bytes`;
  expect(size?.bytes).toBeLessThanOrEqual(8192);
}, 30_000);
