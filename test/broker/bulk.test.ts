// Bulk cancel and DLQ bulk actions: each filter narrows, an unknown or empty one is refused, never widened to all.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { Client } from "@upstash/qstash";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { call, dropSchema, startReceiver, startTestBroker, uniqueSchema } from "./helpers.ts";

const schema = uniqueSchema("bulk");
let broker: Broker;
let client: Client;
const destination = startReceiver();

beforeAll(async () => {
  broker = await startTestBroker(schema);
  client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
});

beforeEach(async () => {
  await broker.sql`DELETE FROM qstash_messages`;
});

afterAll(async () => {
  await broker.stop();
  destination.stop();
  await dropSchema(schema);
});

/** A message that waits (a day away), so only a cancel removes it. */
async function waiting(path: string): Promise<string> {
  const { messageId } = await client.publish({ url: destination.url(path), body: path, delay: "1d" });
  return messageId;
}

const left = async () =>
  (await broker.sql`SELECT id FROM qstash_messages ORDER BY seq`).map((r) => r.id as string);

describe("DELETE /v2/messages", () => {
  test("fromDate and toDate cancel only messages created in that range", async () => {
    const older = await waiting("/older");
    await Bun.sleep(20);
    const cut = Date.now();
    await Bun.sleep(20);
    const newer = await waiting("/newer");
    expect(await client.messages.cancel({ filter: { fromDate: cut } })).toEqual({ cancelled: 1 });
    expect(await left()).toEqual([older]);
    const again = await waiting("/again");
    expect(await client.messages.cancel({ filter: { toDate: cut } })).toEqual({ cancelled: 1 });
    expect(await left()).toEqual([again]);
    expect(newer).not.toBe(again);
  });

  test("callerIp (and the deprecated callerIP) cancel only that publisher's messages", async () => {
    const id = await waiting("/ip");
    const ip = (await client.messages.get(id)).callerIp as string;
    expect(ip).toBeTruthy();
    for (const name of ["callerIp", "callerIP"]) {
      const other = await call(broker, `/v2/messages?${name}=10.9.9.9`, { method: "DELETE" });
      expect(other).toEqual({ status: 200, body: { cancelled: 0 } });
    }
    expect(await left()).toEqual([id]);
    const mine = await call(broker, `/v2/messages?callerIP=${encodeURIComponent(ip)}`, { method: "DELETE" });
    expect(mine).toEqual({ status: 200, body: { cancelled: 1 } });
  });

  test("with messageIds, the other filters are ignored, as QStash does", async () => {
    const id = await waiting("/by-id");
    const response = await call(broker, `/v2/messages?messageIds=${id}&url=http://other.example/x`, {
      method: "DELETE",
    });
    expect(response).toEqual({ status: 200, body: { cancelled: 1 } });
  });

  test("an unknown, unsupported or empty filter is 400 and cancels nothing", async () => {
    const id = await waiting("/kept");
    for (const query of [
      "fromdate=1",
      "messageId=msg_x",
      "urll=http://x",
      "host=127.0.0.1",
      "label=a",
      "messageIds=",
      "messageIds=,",
      "url=",
      "fromDate=soon",
    ]) {
      const response = await call(broker, `/v2/messages?${query}`, { method: "DELETE" });
      expect({ query, status: response.status }).toEqual({ query, status: 400 });
      expect(response.body).toEqual({ error: expect.any(String) });
    }
    expect(await left()).toEqual([id]);
  });

  test("the SDK's count is accepted and every matching message is cancelled, as QStash does", async () => {
    await waiting("/a");
    await waiting("/b");
    expect(await client.messages.cancel({ all: true, count: 1 })).toEqual({ cancelled: 2 });
  });
});

describe("DLQ bulk actions", () => {
  test("an unknown filter on DELETE /v2/dlq or POST /v2/dlq/retry is 400 and touches nothing", async () => {
    await broker.sql`DELETE FROM qstash_dlq`;
    await broker.sql`
      INSERT INTO qstash_dlq (dlq_id, message_id, url, method, headers, body, max_retries, timeout_ms,
        created_at, attempts, failed_at)
      VALUES ('dlq_kept', 'msg_kept', ${destination.url("/dead")}, 'POST', '{}'::jsonb, ''::bytea, 0, 1000,
        ${Date.now()}, 1, ${Date.now()})`;
    for (const [method, path] of [
      ["DELETE", "/v2/dlq?callerIPs=10.9.9.9"],
      ["DELETE", "/v2/dlq?fromdate=1"],
      ["DELETE", "/v2/dlq?dlqIds="],
      ["POST", "/v2/dlq/retry?urll=http://x"],
    ] as const) {
      const response = await call(broker, path, { method });
      expect({ path, status: response.status }).toEqual({ path, status: 400 });
    }
    expect((await call(broker, "/v2/dlq")).body).toMatchObject({ messages: [{ dlqId: "dlq_kept" }] });
    for (const name of ["callerIp", "callerIP"]) {
      const other = await call(broker, `/v2/dlq?${name}=10.9.9.9`, { method: "DELETE" });
      expect(other).toEqual({ status: 200, body: { deleted: 0 } });
    }
    expect(await client.dlq.delete({ all: true })).toEqual({ deleted: 1 });
  });
});

describe("an empty id is not a bulk action", () => {
  test("DELETE /v2/messages/, POST /v2/dlq/retry/ and DELETE /v2/dlq/ are 404 and change nothing", async () => {
    const id = await waiting("/empty-id");
    await broker.sql`DELETE FROM qstash_dlq`;
    await broker.sql`
      INSERT INTO qstash_dlq (dlq_id, message_id, url, method, headers, body, max_retries, timeout_ms,
        created_at, attempts, failed_at)
      VALUES ('dlq_stays', 'msg_stays', ${destination.url("/dead")}, 'POST', '{}'::jsonb, ''::bytea, 0, 1000,
        ${Date.now()}, 1, ${Date.now()})`;
    for (const [method, path] of [
      ["DELETE", "/v2/messages/"],
      ["GET", "/v2/messages/"],
      ["POST", "/v2/dlq/retry/"],
      ["DELETE", "/v2/dlq/"],
      ["DELETE", "/v2/dlq//"],
      ["DELETE", "/v2/queues/"],
    ] as const) {
      const response = await call(broker, path, { method });
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      expect(response.body).toEqual({ error: expect.any(String) });
    }
    expect(await left()).toEqual([id]);
    const [dlq] = await broker.sql`SELECT count(*)::int AS n FROM qstash_dlq`;
    expect(dlq?.n).toBe(1);
  });
});
