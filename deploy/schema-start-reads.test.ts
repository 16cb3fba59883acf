// A node start reads its Postgres stores' schema markers once, for the broker, the API keys and commerce together.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { parseConfig } from "../shared/config/index.ts";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../test/broker/helpers.ts";
import { startNode } from "./bun/node.ts";
import type { Sql } from "./local/broker/db.ts";
import { referenceSystem } from "./reference.ts";
import { startStores } from "./schema-start-stores.ts";

const schema = uniqueSchema("start_reads");
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-start-reads-"));
afterAll(async () => {
  await dropSchema(schema);
  rmSync(dataDir, { recursive: true, force: true });
});

/**
 * Scans of the schema's marker table so far, as the server counts them: every read of the markers is one. A backend
 * flushes its counts when it goes idle (at most once a second) and when it exits, which comes a moment after its
 * client has closed the connection, later on a loaded machine: so the count is read until it has stayed the same for
 * 1.5 s (and at most 10 s).
 */
async function markerScans(): Promise<number> {
  let scans = await markerScansNow();
  let since = Date.now();
  for (const deadline = since + 10_000; Date.now() - since < 1_500 && Date.now() < deadline; ) {
    await Bun.sleep(250);
    const now = await markerScansNow();
    if (now !== scans) [scans, since] = [now, Date.now()];
  }
  return scans;
}

async function markerScansNow(): Promise<number> {
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<Array<{ scans: number }>>`
      SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::int AS scans FROM pg_stat_user_tables
      WHERE schemaname = ${schema} AND relname = 'edgewise_schema'`;
    return row?.scans ?? 0;
  } finally {
    await sql.end();
  }
}

test("a start on a migrated schema reads the markers once", async () => {
  await createSchema(schema);
  const prepare = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema },
  }) as unknown as Sql;
  await startStores(prepare);
  await prepare.end();
  const before = await markerScans();

  const node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: TEST_DATABASE_URL,
      EDGEWISE_DATA_DIR: dataDir,
      JWT_SECRET: crypto.randomUUID() + crypto.randomUUID(),
    }),
    ...referenceSystem(),
    schema,
    log: () => {},
  });
  await node.stop();
  // Three before: the node's API key store, the broker and commerce each read them on their own.
  expect((await markerScans()) - before).toBe(1);
}, 30_000);
