// The event log's retention: a broker prunes events older than eventRetentionMs as it starts, then every minute.
import { afterAll, expect, test } from "bun:test";
import { connect, migrate } from "../../deploy/local/broker/db.ts";
import { dropSchema, startTestBroker, TEST_DATABASE_URL, waitFor } from "./helpers.ts";

const schema = `broker_retention_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
afterAll(() => dropSchema(schema));

test("events older than the retention are gone once the broker has started; newer ones stay", async () => {
  const sql = await connect({ url: TEST_DATABASE_URL, max: 1, schema });
  try {
    await migrate(sql);
    const now = Date.now();
    await sql`INSERT INTO qstash_events (time, message_id, state, url) VALUES
      (${now - 2 * 3_600_000}, 'msg_old', 'DELIVERED', 'http://127.0.0.1:1/x'),
      (${now - 60_000}, 'msg_recent', 'DELIVERED', 'http://127.0.0.1:1/x')`;
    const broker = await startTestBroker(schema, { eventRetentionMs: 3_600_000 });
    try {
      const ids = async () =>
        (await sql`SELECT message_id FROM qstash_events ORDER BY time`).map((r) => r.message_id as string);
      await waitFor(async () => !(await ids()).includes("msg_old"), 5_000, "the old event to be pruned");
      expect(await ids()).toEqual(["msg_recent"]);
    } finally {
      await broker.stop();
    }
  } finally {
    await sql.end();
  }
}, 15_000);
