// Bad input: wrong token, malformed destination, oversized body, unknown route; each a JSON error, nothing stored.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { call, dropSchema, startReceiver, startTestBroker, uniqueSchema } from "./helpers.ts";

const schema = uniqueSchema("badinput");
let broker: Broker;
const destination = startReceiver();

const stored = async () => {
  const [row] = await broker.sql`
    SELECT (SELECT count(*)::int FROM qstash_messages) AS messages, (SELECT count(*)::int FROM qstash_events) AS events`;
  return row;
};

beforeAll(async () => {
  broker = await startTestBroker(schema, { maxBodyBytes: 1024, maxBatchBytes: 64 * 1024 });
});

afterAll(async () => {
  await broker.stop();
  destination.stop();
  await dropSchema(schema);
});

describe("bad input changes nothing", () => {
  const url = () => destination.url("/hook");

  test("a wrong or missing token is 401", async () => {
    const wrong = await call(broker, `/v2/publish/${url()}`, { method: "POST", body: "x", token: "nope" });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: expect.any(String) });
    const missing = await call(broker, `/v2/publish/${url()}`, { method: "POST", body: "x", token: null });
    expect(missing.status).toBe(401);
    const keys = await call(broker, "/v2/keys", { token: "nope" });
    expect(keys.status).toBe(401);
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("?qstash_token= works where headers cannot be set, and is not forwarded", async () => {
    const response = await call(
      broker,
      `/v2/publish/${url()}?qstash_token=${encodeURIComponent(broker.token)}`,
      {
        method: "POST",
        body: "x",
        token: null,
        headers: { "Upstash-Delay": "1d" }, // stays pending, so nothing happens to it after the clean-up below
      },
    );
    expect(response.status).toBe(201);
    const id = (response.body as { messageId: string; url: string }).messageId;
    expect((response.body as { url: string }).url).toBe(url());
    await broker.sql`DELETE FROM qstash_messages WHERE id = ${id}`;
    await broker.sql`DELETE FROM qstash_events`;
  });

  test("the destination's query string is kept byte for byte; only qstash_token is taken out", async () => {
    const token = encodeURIComponent(broker.token);
    for (const [query, kept] of [
      ["?flag&q=hello%20world&t=a:b,c&e=", "?flag&q=hello%20world&t=a:b,c&e="],
      [`?a=1&qstash_token=${token}&b=x+y%2Bz&c`, "?a=1&b=x+y%2Bz&c"],
      [`?qstash_token=${token}`, ""],
    ]) {
      const response = await call(broker, `/v2/publish/${url()}${query}`, {
        method: "POST",
        body: "x",
        headers: { "Upstash-Delay": "1d" },
      });
      const { messageId, url: stored } = response.body as { messageId: string; url: string };
      const [row] = await broker.sql`DELETE FROM qstash_messages WHERE id = ${messageId} RETURNING url`;
      await broker.sql`DELETE FROM qstash_events`;
      expect(response.status).toBe(201);
      expect(stored).toBe(`${url()}${kept}`);
      expect(row?.url).toBe(`${url()}${kept}`);
    }
  });

  test("a malformed destination is 400", async () => {
    for (const bad of ["not-a-url", "ftp://example.com/x", "http://", "javascript:alert(1)"]) {
      const response = await call(broker, `/v2/publish/${bad}`, { method: "POST", body: "x" });
      expect(response.status).toBe(400);
      expect(response.body).toEqual({ error: expect.stringContaining("destination") });
    }
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("malformed Upstash headers are 400", async () => {
    const bad: Array<[string, string]> = [
      ["Upstash-Delay", "soon"],
      ["Upstash-Retries", "-1"],
      ["Upstash-Not-Before", "tomorrow"],
      ["Upstash-Method", "BREW"],
      ["Upstash-Timeout", "0s"],
    ];
    for (const header of bad) {
      const response = await call(broker, `/v2/publish/${url()}`, {
        method: "POST",
        body: "x",
        headers: [header],
      });
      expect(response.status).toBe(400);
      expect(response.body).toEqual({ error: expect.any(String) });
    }
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("an Upstash-Method it does not take is not repeated back: the error names the methods it takes", async () => {
    for (const method of ["BREW", `X${"<script>".repeat(500)}`, "GET\u0085"]) {
      const response = await call(broker, `/v2/publish/${url()}`, {
        method: "POST",
        body: "x",
        headers: [["Upstash-Method", method]],
      });
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: "invalid Upstash-Method: use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
      });
    }
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("a delay past the maximum (1 year, as on QStash's pay-as-you-go plan) is 400, however large", async () => {
    const inDays = (days: number) => String(Math.floor(Date.now() / 1000) + days * 86_400);
    for (const header of [
      ["Upstash-Delay", "99999999999999999999d"],
      ["Upstash-Delay", "366d"],
      ["Upstash-Delay", "9".repeat(400)],
      ["Upstash-Not-Before", "99999999999999999"],
      ["Upstash-Not-Before", "9".repeat(400)],
      ["Upstash-Not-Before", inDays(366)],
    ] as Array<[string, string]>) {
      const response = await call(broker, `/v2/publish/${url()}`, {
        method: "POST",
        body: "x",
        headers: [header],
      });
      expect({ header, status: response.status }).toEqual({ header, status: 400 });
      expect(response.body).toEqual({ error: expect.any(String) });
    }
    expect(await stored()).toEqual({ messages: 0, events: 0 });
    for (const header of [
      ["Upstash-Delay", "365d"],
      ["Upstash-Not-Before", inDays(364)],
    ] as Array<[string, string]>) {
      const response = await call(broker, `/v2/publish/${url()}`, {
        method: "POST",
        body: "x",
        headers: [header],
      });
      expect({ header, status: response.status }).toEqual({ header, status: 201 });
    }
    await broker.sql`DELETE FROM qstash_messages`;
    await broker.sql`DELETE FROM qstash_events`;
  });

  test("a batch destination with a control character is 400, not a 500", async () => {
    for (const destination of [`${url()}/a\u0000b`, `${url()}/a\nb`]) {
      const response = await call(broker, "/v2/batch", {
        method: "POST",
        body: JSON.stringify([{ destination }]),
      });
      expect({ destination, status: response.status }).toEqual({ destination, status: 400 });
    }
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("a body over maxBodyBytes is 413, for publish and inside a batch", async () => {
    const big = "x".repeat(1025);
    const single = await call(broker, `/v2/publish/${url()}`, { method: "POST", body: big });
    expect(single.status).toBe(413);
    expect(single.body).toEqual({ error: expect.stringContaining("limit") });
    const batch = await call(broker, "/v2/batch", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([
        { destination: url(), body: "fine" },
        { destination: url(), body: big },
      ]),
    });
    expect(batch.status).toBe(413);
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("a request far over every limit gets a JSON 413 too, with or without Content-Length", async () => {
    const huge = "x".repeat(1024 * 1024);
    const declared = await call(broker, "/v2/batch", { method: "POST", body: huge });
    expect(declared).toEqual({ status: 413, body: { error: expect.stringContaining("limit") } });
    const published = await call(broker, `/v2/publish/${url()}`, { method: "POST", body: huge });
    expect(published).toEqual({ status: 413, body: { error: expect.stringContaining("limit") } });
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 16; i++) controller.enqueue(new TextEncoder().encode(huge.slice(0, 64 * 1024)));
        controller.close();
      },
    });
    const streamed = await call(broker, "/v2/batch", {
      method: "POST",
      body: chunks,
      duplex: "half",
    } as RequestInit);
    expect(streamed).toEqual({ status: 413, body: { error: expect.stringContaining("limit") } });
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("a batch with one bad item stores none of it", async () => {
    const response = await call(broker, "/v2/batch", {
      method: "POST",
      body: JSON.stringify([{ destination: url(), body: "ok" }, { destination: "nope" }]),
    });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: expect.stringContaining("batch item 1") });
    expect((await call(broker, "/v2/batch", { method: "POST", body: "{" })).status).toBe(400);
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("a batch header value that is not text is 400, not sent as '[object Object]'", async () => {
    for (const value of [{ a: 1 }, null, [1], true]) {
      const response = await call(broker, "/v2/batch", {
        method: "POST",
        body: JSON.stringify([{ destination: url(), headers: { "Upstash-Forward-N": value }, body: "x" }]),
      });
      expect({ value, status: response.status }).toEqual({ value, status: 400 });
      expect(response.body).toEqual({ error: 'batch item 0: header "Upstash-Forward-N" must be a string' });
    }
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("a queue created with a body that is not an object, or paused not a boolean, is 400, not a 500", async () => {
    for (const body of ["null", "[]", "7", '"q"', '{"queueName":"q1","paused":"true"}']) {
      const response = await call(broker, "/v2/queues", { method: "POST", body });
      expect({ body, status: response.status }).toEqual({ body, status: 400 });
      expect(response.body).toEqual({ error: expect.any(String) });
    }
    expect((await call(broker, "/v2/queues")).body).toEqual([]);
  });

  test("unknown routes are 404 and wrong methods 405, as JSON", async () => {
    for (const path of ["/v2/nothing", "/v3/publish/x", "/", "/v2/dlq/a/b/c"]) {
      const response = await call(broker, path);
      expect(response.status).toBe(404);
      expect(response.body).toEqual({ error: expect.any(String) });
    }
    expect((await call(broker, "/v2/messages/msg_missing")).status).toBe(404);
    expect((await call(broker, "/v2/dlq/dlq_missing", { method: "DELETE" })).status).toBe(404);
    expect((await call(broker, "/v2/queues/none")).status).toBe(404);
    expect((await call(broker, `/v2/publish/${url()}`, { method: "GET" })).status).toBe(405);
    expect((await call(broker, "/v2/dlq/retry", { method: "GET" })).status).toBe(405);
    expect((await call(broker, "/v2/dlq/retry/dlq_x", { method: "DELETE" })).status).toBe(405);
    expect(await stored()).toEqual({ messages: 0, events: 0 });
  });

  test("a malformed or NUL id, or a NUL in a filter, is 400, not a 500", async () => {
    for (const [method, path] of [
      ["GET", "/v2/messages/%E0%A4%A"],
      ["DELETE", "/v2/messages/%E0%A4%A"],
      ["GET", "/v2/dlq/%E0%A4%A"],
      ["POST", "/v2/dlq/retry/%E0%A4%A"],
      ["POST", "/v2/queues/%E0%A4%A/pause"],
      ["GET", "/v2/messages/%00"],
      ["DELETE", "/v2/dlq/a%00b"],
      ["DELETE", "/v2/messages?messageIds=%00"],
      ["GET", "/v2/dlq?url=%00"],
      ["GET", "/v2/events?messageId=a%00"],
    ] as const) {
      const response = await call(broker, path, { method });
      expect({ path, status: response.status }).toEqual({ path, status: 400 });
      expect(response.body).toEqual({ error: expect.any(String) });
    }
  });
  test("an integer filter past what Postgres holds (a date, a cursor, a response status) is 400, not a 500", async () => {
    const before = await stored();
    for (const [method, path] of [
      ["GET", "/v2/dlq?toDate=99999999999999999999999"],
      ["GET", "/v2/dlq?fromDate=99999999999999999999"],
      ["GET", "/v2/dlq?cursor=99999999999999999999"],
      ["GET", "/v2/dlq?responseStatus=3000000000"],
      ["GET", "/v2/dlq?responseStatus=99999999999999999999999"],
      ["GET", "/v2/events?fromDate=99999999999999999999"],
      ["GET", "/v2/events?toDate=-99999999999999999999"],
      ["DELETE", "/v2/messages?fromDate=99999999999999999999"],
      ["DELETE", "/v2/dlq?toDate=99999999999999999999"],
      ["POST", "/v2/dlq/retry?toDate=99999999999999999999999"],
    ] as const) {
      const response = await call(broker, path, { method });
      expect({ path, status: response.status }).toEqual({ path, status: 400 });
      expect(response.body).toEqual({ error: expect.any(String) });
    }
    expect(await stored()).toEqual(before);
  });
});
