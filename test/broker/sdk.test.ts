// The official @upstash/qstash Client and Receiver, unpatched, against the local broker.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Client, Receiver } from "@upstash/qstash";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { dropSchema, startReceiver, startTestBroker, uniqueSchema, waitFor, sdkFor } from "./helpers.ts";

const schema = uniqueSchema("sdk");
let broker: Broker;
let client: Client;
let receiver: Receiver;
const failing = new Set<string>(); // paths that answer 500
const destination = startReceiver((d) =>
  failing.has(new URL(d.url).pathname) ? new Response("nope", { status: 500 }) : new Response("ok"),
);

beforeAll(async () => {
  broker = await startTestBroker(schema);
  ({ client, receiver } = sdkFor(broker));
});

afterAll(async () => {
  await broker.stop();
  destination.stop();
  await dropSchema(schema);
});

describe("official SDK against the broker", () => {
  test("a broker on Postgres keeps 256 deliveries in flight by default", () => {
    expect(broker.deliveryConcurrency).toBe(256);
  });

  test("publishJSON delivers a signed request that Receiver.verify accepts", async () => {
    const url = destination.url("/hook?tenant=a");
    const { messageId } = await client.publishJSON({
      url,
      body: { hello: "world" },
      headers: { "X-Trace": "t1" },
    });
    expect(messageId).toStartWith("msg_");
    await waitFor(() => destination.of(messageId).length === 1);
    const [got] = destination.of(messageId);
    expect(got?.body).toBe('{"hello":"world"}');
    expect(got?.headers["content-type"]).toBe("application/json");
    expect(got?.headers["x-trace"]).toBe("t1");
    expect(got?.retried).toBe(0);
    const signature = got?.headers["upstash-signature"] ?? "";
    expect(await receiver.verify({ signature, body: got?.body ?? "", url })).toBe(true);
    // A tampered body or another URL is refused.
    expect(receiver.verify({ signature, body: '{"hello":"mallory"}', url })).rejects.toThrow();
    expect(
      receiver.verify({ signature, body: got?.body ?? "", url: destination.url("/other") }),
    ).rejects.toThrow();
    // Signed with the current key: a receiver that only knows the next key refuses it.
    const wrong = new Receiver({
      currentSigningKey: broker.nextSigningKey,
      nextSigningKey: broker.nextSigningKey,
    });
    expect(wrong.verify({ signature, body: got?.body ?? "", url })).rejects.toThrow();
  });

  test("batchJSON stores every message and returns one result each", async () => {
    const results = await client.batchJSON([
      { url: destination.url("/b1"), body: { n: 1 } },
      { url: destination.url("/b2"), body: { n: 2 } },
      { url: destination.url("/b3"), body: { n: 3 }, queueName: "batchq" },
    ]);
    expect(results).toHaveLength(3);
    const ids = results.map((r) => (r as { messageId: string }).messageId);
    await waitFor(() => ids.every((id) => destination.of(id).length === 1));
    expect(ids.map((id) => destination.of(id)[0]?.body)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
  });

  test("queue().enqueueJSON delivers through a named queue", async () => {
    const queue = client.queue({ queueName: "orders" });
    await queue.upsert({ parallelism: 2 });
    const { messageId } = await queue.enqueueJSON({ url: destination.url("/q"), body: { order: 7 } });
    await waitFor(() => destination.of(messageId).length === 1);
    await waitFor(async () => (await queue.get()).lag === 0, 5000, "the queue to drain");
    const info = await queue.get();
    expect(info).toMatchObject({ name: "orders", parallelism: 2, paused: false, lag: 0 });
    expect((await queue.list()).map((q) => q.name)).toContain("orders");
  });

  test("messages.get shows a waiting message, and messages.cancel stops it", async () => {
    const { messageId } = await client.publishJSON({
      url: destination.url("/later"),
      body: { x: 1 },
      delay: 3600,
    });
    const message = await client.messages.get(messageId);
    expect(message).toMatchObject({
      messageId,
      url: destination.url("/later"),
      method: "POST",
      body: '{"x":1}',
    });
    expect(message.maxRetries).toBe(3);
    expect(await client.messages.cancel(messageId)).toEqual({ cancelled: 1 });
    expect(client.messages.get(messageId)).rejects.toThrow(/not found/);
    const logs = await client.logs({ messageIds: [messageId] });
    expect(logs.logs.map((l) => l.state)).toEqual(["CANCELED", "CREATED"]);
  });

  test("dlq listMessages / retry / delete", async () => {
    failing.add("/dead");
    const a = await client.publishJSON({ url: destination.url("/dead"), body: { n: "a" }, retries: 0 });
    const b = await client.publishJSON({ url: destination.url("/dead"), body: { n: "b" }, retries: 0 });
    const listed = async () =>
      (await client.dlq.listMessages({ filter: { url: destination.url("/dead") } })).messages;
    await waitFor(async () => (await listed()).length === 2, 5000, "two DLQ messages");
    const messages = await listed();
    const entryA = messages.find((m) => m.messageId === a.messageId);
    expect(entryA).toMatchObject({ url: destination.url("/dead"), body: '{"n":"a"}', responseStatus: 500 });
    expect(entryA?.responseBody).toBe("nope");
    expect(entryA?.dlqId).toBeString();

    failing.delete("/dead");
    const retried = await client.dlq.retry(entryA?.dlqId ?? "");
    expect(retried.responses).toHaveLength(1);
    const replayId = retried.responses[0]?.messageId ?? "";
    await waitFor(() => destination.of(replayId).length === 1, 5000, "the replay");
    expect(destination.of(replayId)[0]?.body).toBe('{"n":"a"}');
    await Bun.sleep(50);
    expect(destination.of(replayId)).toHaveLength(1); // delivered once

    const entryB = (await listed()).find((m) => m.messageId === b.messageId);
    expect(await client.dlq.delete(entryB?.dlqId ?? "")).toEqual({ deleted: 1 });
    expect(await listed()).toHaveLength(0);
  });

  test("logs page newest first with a cursor", async () => {
    const first = await client.logs({ count: 2 });
    expect(first.logs).toHaveLength(2);
    expect(first.cursor).toBeString();
    const second = await client.logs({ count: 2, cursor: first.cursor ?? "" });
    expect(second.logs).toHaveLength(2);
    const times = [...first.logs, ...second.logs].map((l) => l.time);
    expect(times).toEqual([...times].sort((a, b) => b - a));
    const onlyDelivered = await client.logs({ count: 5, filter: { state: "DELIVERED" } });
    expect(onlyDelivered.logs.every((l) => l.state === "DELIVERED")).toBe(true);
  });

  test("the dev-mode health check sees the broker's keys", async () => {
    const response = await fetch(`${broker.url}/v2/keys`, {
      headers: { authorization: `Bearer ${broker.token}` },
    });
    expect(await response.json()).toEqual({ current: broker.currentSigningKey, next: broker.nextSigningKey });
  });
});
