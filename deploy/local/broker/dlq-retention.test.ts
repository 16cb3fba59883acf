// Dead-letter retention (EDGEWISE_BROKER_DLQ_RETENTION): dead letters older than it are deleted, newer ones stay.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../../shared/config/index.ts";
import { call, dropSchema, startTestBroker, uniqueSchema, waitFor } from "../../../test/broker/helpers.ts";
import type { Sql } from "./db.ts";
import { type Broker, startBroker } from "./index.ts";
import { housekeeping } from "./store-events.ts";

const day = 86_400_000;
const schema = uniqueSchema("broker_dlq_retention");
let broker: Broker | undefined;
/** What the broker's own sweeps said they deleted. */
const swept: number[] = [];

beforeAll(async () => {
  broker = await startTestBroker(schema, {
    log: (line) => {
      const deleted = /^housekeeping: deleted (\d+) dead letters/.exec(line);
      if (deleted) swept.push(Number(deleted[1]));
    },
  });
});
afterAll(async () => {
  await broker?.stop();
  await dropSchema(schema);
});

/** `count` dead letters named `<prefix>-<n>`, failed `ageDays` ago. */
const deadLetters = (sql: Sql, prefix: string, count: number, ageDays: number) => sql`
  INSERT INTO qstash_dlq (dlq_id, message_id, url, method, headers, body, max_retries, timeout_ms, created_at,
    attempts, failed_at)
  SELECT ${prefix} || '-' || n, 'msg_' || ${prefix} || '_' || n, 'http://127.0.0.1:1/hook', 'POST', '{}'::jsonb,
    '\\x78'::bytea, 3, 60000, ${Date.now() - ageDays * day}::bigint, 4, ${Date.now() - ageDays * day}::bigint
  FROM generate_series(1, ${count}) AS n`;

const dlqIds = async (target: Broker) => {
  const listed = await call(target, "/v2/dlq?count=100");
  return ((listed.body as { messages: Array<{ dlqId: string }> }).messages ?? []).map((m) => m.dlqId).sort();
};

test("30 days by default, at least a day", () => {
  expect(parseConfig({}).EDGEWISE_BROKER_DLQ_RETENTION).toBe(30 * day);
  expect(parseConfig({ EDGEWISE_BROKER_DLQ_RETENTION: "90d" }).EDGEWISE_BROKER_DLQ_RETENTION).toBe(90 * day);
  expect(() => parseConfig({ EDGEWISE_BROKER_DLQ_RETENTION: "1h" })).toThrow(
    /EDGEWISE_BROKER_DLQ_RETENTION must be at least 1d/,
  );
});

test("on Postgres, housekeeping deletes dead letters past their retention in batches, by an index; newer stay", async () => {
  const sql = (broker as Broker).sql;
  await deadLetters(sql, "aged", 1_100, 31);
  await deadLetters(sql, "kept", 3, 29);
  const { deadLetters: counted } = await housekeeping(sql, { eventsMs: 7 * day, deadLettersMs: 30 * day });
  expect(await dlqIds(broker as Broker)).toEqual(["kept-1", "kept-2", "kept-3"]);
  // The broker's own first sweep (not awaited by its start) may still be under way on a loaded machine and take some
  // of the batch: each row is deleted and counted once, by one sweep or the other.
  await waitFor(
    () => counted + swept.reduce((sum, n) => sum + n, 0) === 1_100,
    5_000,
    "every aged one counted",
  );
  expect(counted + swept.reduce((sum, n) => sum + n, 0)).toBe(1_100);
  // The batches can be found by age through an index (with seq scans priced out: three rows would not need one).
  const plan = await sql.begin(async (tx) => {
    await tx`SET LOCAL enable_seqscan = off`;
    return tx.unsafe(
      `EXPLAIN SELECT dlq_id FROM qstash_dlq WHERE failed_at < ${Date.now() - 30 * day} ORDER BY failed_at LIMIT 500`,
    );
  });
  expect(plan.map((row) => Object.values(row)[0]).join("\n")).toContain("qstash_dlq_failed");
});

test("a broker on the embedded PGlite deletes them as it starts, and says how many", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-dlq-retention-"));
  const lines: string[] = [];
  const start = () => startBroker({ port: 0, dataDir, log: (line) => lines.push(line) });
  try {
    let embedded = await start();
    try {
      await deadLetters(embedded.sql, "aged", 40, 31);
      await deadLetters(embedded.sql, "kept", 2, 29);
    } finally {
      await embedded.stop();
    }
    embedded = await start();
    try {
      await waitFor(async () => (await dlqIds(embedded)).length === 2, 20_000, "the aged dead letters to go");
      expect(await dlqIds(embedded)).toEqual(["kept-1", "kept-2"]);
      expect(lines).toContain("housekeeping: deleted 40 dead letters older than the DLQ retention");
    } finally {
      await embedded.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
