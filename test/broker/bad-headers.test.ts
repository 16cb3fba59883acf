// Header names and values HTTP does not allow: refused at /v2/batch, and a delivery that cannot build its request
// is a failed attempt (retried, then dead-lettered), never a message left active for good.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { call, dropSchema, startReceiver, startTestBroker, uniqueSchema, waitFor } from "./helpers.ts";

const schema = uniqueSchema("badheaders");
let broker: Broker;
const destination = startReceiver();

beforeAll(async () => {
  broker = await startTestBroker(schema);
});

afterAll(async () => {
  await broker.stop();
  destination.stop();
  await dropSchema(schema);
});

describe("headers HTTP does not allow", () => {
  test("a batch item with one is 400, and nothing is stored", async () => {
    for (const headers of [
      { "Upstash-Forward-X": "a\nb" },
      { "Upstash-Forward-X": "a\r\nInjected: 1" },
      { "Upstash-Forward-X": "price in €" },
      { "Upstash-Forward-X": "a\u0001b" },
      { "Upstash-Forward-Bad Name": "1" },
      { "Content-Type": "text/plain\n" },
      { "Upstash-Deduplication-Id": "a\u0000b" },
    ]) {
      const response = await call(broker, "/v2/batch", {
        method: "POST",
        body: JSON.stringify([
          { destination: destination.url("/fine"), body: "ok" },
          { destination: destination.url("/bad"), headers },
        ]),
      });
      expect({ headers, status: response.status }).toEqual({ headers, status: 400 });
      expect(response.body).toEqual({ error: expect.stringContaining("batch item 1") });
    }
    const [row] = await broker.sql`SELECT count(*)::int AS n FROM qstash_messages`;
    expect(row?.n).toBe(0);
  });

  test("Latin-1 text and tabs are allowed, as HTTP allows them", async () => {
    const response = await call(broker, "/v2/batch", {
      method: "POST",
      body: JSON.stringify([
        { destination: destination.url("/latin1"), headers: { "Upstash-Forward-X": "café\tau lait" } },
      ]),
    });
    expect(response.status).toBe(201);
    await waitFor(() => destination.deliveries.some((d) => d.path === "/latin1"));
  });

  test("a stored message whose request cannot be built is retried, dead-lettered and frees its queue", async () => {
    // As an earlier version could have stored it: straight into the table, past the validation above.
    const now = Date.now();
    await broker.sql`INSERT INTO qstash_queues (name, parallelism, created_at, updated_at) VALUES ('stuck', 1, ${now}, ${now})`;
    await broker.sql`
      INSERT INTO qstash_messages (id, url, method, headers, body, queue_name, max_retries, timeout_ms, due_at,
        created_at)
      VALUES ('msg_badheader', ${destination.url("/never")}, 'POST', ${broker.sql.json({ x: "a\nb" })}, ''::bytea,
        'stuck', 1, 10000, ${now}, ${now})`;
    const behind = await call(broker, `/v2/enqueue/stuck/${destination.url("/behind")}`, {
      method: "POST",
      body: "b",
    });
    expect(behind.status).toBe(201);
    await waitFor(
      () => destination.deliveries.some((d) => d.path === "/behind"),
      5000,
      "the message behind it",
    );
    const [dead] =
      await broker.sql`SELECT attempts, last_error FROM qstash_dlq WHERE message_id = 'msg_badheader'`;
    expect(dead?.attempts).toBe(2);
    expect(dead?.last_error).toContain("invalid");
    const events = await call(broker, "/v2/events?messageId=msg_badheader");
    const states = (events.body as { events: { state: string }[] }).events.map((e) => e.state);
    expect(states).toContain("ERROR");
    expect(states).toContain("FAILED");
    expect(destination.deliveries.some((d) => d.path === "/never")).toBe(false);
  });
});
