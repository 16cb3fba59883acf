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

test("an account updated 300 times leaves dead rows that the node's upkeep vacuums", async () => {
  expect(node.broker).toBeUndefined();
  const put = (balanceCents: number) =>
    fetch(`${node.url}/v1/accounts/upkeep-customer`, {
      method: "PUT",
      headers: { authorization: `Bearer ${node.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ balanceCents }),
    });
  for (let i = 0; i < 300; i++) expect((await put(i)).status).toBe(200);
  const vacuums = async () => {
    const [row] = await node.sql<Array<{ vacuums: number }>>`
      SELECT vacuum_count::int AS vacuums FROM pg_stat_user_tables WHERE relname = 'billing_accounts'`;
    return row?.vacuums ?? 0;
  };
  await eventually(async () => (await vacuums()) > 0, "billing_accounts to be vacuumed", 10_000);
}, 30_000);
