// Named queues: FIFO with parallelism 1 (even across a retry), at most N in flight, pause and resume.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@upstash/qstash";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { dropSchema, startReceiver, startTestBroker, uniqueSchema, waitFor } from "./helpers.ts";

const schema = uniqueSchema("queue");
let broker: Broker;
let client: Client;
let inFlight = 0;
let maxInFlight = 0;
const destination = startReceiver(async (d, nth) => {
  if (d.path === "/fifo" && d.body === "5" && nth === 1) return new Response("once", { status: 500 });
  if (d.path === "/fifo") await Bun.sleep(Math.random() * 4);
  if (d.path === "/wide") {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await Bun.sleep(30);
    inFlight--;
  }
  return new Response("ok");
});

beforeAll(async () => {
  broker = await startTestBroker(schema, { deliveryConcurrency: 32 });
  client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
});

afterAll(async () => {
  await broker.stop();
  destination.stop();
  await dropSchema(schema);
});

describe("queues", () => {
  test("parallelism 1 delivers in enqueue order, and a retry holds the messages behind it", async () => {
    const queue = client.queue({ queueName: "fifo" });
    await queue.upsert({ parallelism: 1 });
    for (let i = 0; i < 20; i++) await queue.enqueue({ url: destination.url("/fifo"), body: String(i) });
    await client.batch(
      Array.from({ length: 20 }, (_, i) => ({
        url: destination.url("/fifo"),
        body: String(20 + i),
        queueName: "fifo",
      })),
    );
    await waitFor(
      () => destination.deliveries.filter((d) => d.path === "/fifo").length === 41,
      8000,
      "41 deliveries",
    );
    const bodies = destination.deliveries.filter((d) => d.path === "/fifo").map((d) => Number(d.body));
    // Message 5 fails once and is retried before 6 is sent.
    expect(bodies).toEqual([0, 1, 2, 3, 4, 5, 5, ...Array.from({ length: 34 }, (_, i) => i + 6)]);
  });

  test("parallelism 3 keeps at most 3 in flight", async () => {
    const queue = client.queue({ queueName: "wide" });
    await queue.upsert({ parallelism: 3 });
    await client.batch(
      Array.from({ length: 15 }, (_, i) => ({
        url: destination.url("/wide"),
        body: String(i),
        queueName: "wide",
      })),
    );
    await waitFor(() => destination.deliveries.filter((d) => d.path === "/wide").length === 15, 5000);
    expect(maxInFlight).toBe(3);
  });

  test("a paused queue holds its messages until resumed", async () => {
    const queue = client.queue({ queueName: "held" });
    await queue.upsert({ parallelism: 1, paused: true });
    const { messageId } = await queue.enqueue({ url: destination.url("/held"), body: "h" });
    await Bun.sleep(150);
    expect(destination.of(messageId)).toHaveLength(0);
    expect(await queue.get()).toMatchObject({ paused: true, lag: 1 });
    await queue.resume();
    await waitFor(() => destination.of(messageId).length === 1, 3000);
  });

  test("deleting a queue cancels what is still in it", async () => {
    const queue = client.queue({ queueName: "doomed" });
    await queue.upsert({ parallelism: 1, paused: true });
    const { messageId } = await queue.enqueue({ url: destination.url("/doomed"), body: "d" });
    await queue.delete();
    expect(client.messages.get(messageId)).rejects.toThrow();
    expect((await client.queue().list()).map((q) => q.name)).not.toContain("doomed");
  });
});
