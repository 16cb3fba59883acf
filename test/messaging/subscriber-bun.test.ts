// The subscription test of test/messaging/cloudflare.test.ts on the Bun host: one node (startNode) with its embedded
// broker on the real Postgres; the event reaches a subscriber wired only by a subscription, through the broker.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@upstash/qstash";
import { deliveryPath } from "../../actors/queue/qstash-transport.ts";
import { type ActorAddress, formatAddress } from "../../actors/runtime/index.ts";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { parseConfig } from "../../shared/config/index.ts";
import type { Envelope } from "../../shared/envelope/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema, waitFor } from "../broker/helpers.ts";
import { counter } from "../conformance/fixtures.ts";
import { subscriber, subscriptions } from "./fixtures.ts";

const schema = uniqueSchema("messaging_bun_sub");
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-messaging-bun-"));
let node: EdgewiseNode;

beforeAll(async () => {
  node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      DATABASE_URL: TEST_DATABASE_URL,
      PORT: "0",
      EDGEWISE_DATA_DIR: dataDir,
    }),
    actors: [counter, subscriber],
    subscriptions,
    schema: schema,
    brokerTimeScale: 0.01,
    log: () => {},
  });
});

afterAll(async () => {
  await node?.stop();
  await dropSchema(schema);
  rmSync(dataDir, { recursive: true, force: true });
});

interface SubscriberState {
  received: Array<{ id: string; from: string; note: string; envelope: Envelope }>;
}

const received = (address: ActorAddress) =>
  (node.host!.inspect(address).state as SubscriberState | undefined)?.received ?? [];

async function deliveredTo(address: ActorAddress, messageIds?: string[]): Promise<number> {
  const broker = node.broker;
  if (!broker) throw new Error("expected the embedded broker");
  const query = new URLSearchParams({ url: `${node.publicUrl}${deliveryPath(address)}`, state: "DELIVERED" });
  if (messageIds) query.set("messageIds", messageIds.join(","));
  const response = await fetch(`${broker.url}/v2/events?${query}`, {
    headers: { authorization: `Bearer ${broker.token}` },
  });
  return ((await response.json()) as { events: unknown[] }).events.length;
}

describe("subscriptions on the Bun host, through the broker", () => {
  const producer = { type: "counter", key: "producer" };
  const ofProducer = { type: "subscriber", key: "of-producer" };
  const all = { type: "subscriber", key: "all" };

  test("the embedded broker on Postgres keeps 256 deliveries in flight unless QSTASH_DELIVERY_CONCURRENCY says", () => {
    expect(node.broker?.deliveryConcurrency).toBe(256);
  });

  test("a published event reaches the subscribers named only by a subscription", async () => {
    const { reply } = await node.host!.ask(producer, "Announce", { note: "hello" });
    const { id } = reply as { id: string };
    for (const address of [ofProducer, all]) {
      await waitFor(() => received(address).length === 1, 10_000, `the event at ${formatAddress(address)}`);
      expect(received(address)[0]).toMatchObject({ id, from: "producer", note: "hello" });
      expect(received(address)[0]?.envelope.target).toBe(formatAddress(address));
      // The broker logs the outcome after the HTTP call returns: the actor may have committed a moment before.
      await waitFor(async () => (await deliveredTo(address)) === 1, 5_000, "the broker's DELIVERED event");
    }
    await waitFor(() => node.host!.inspect(producer).outboxSize === 0, 5_000, "producer's outbox to drain");
  });

  test("the same event delivered again through the broker is applied once", async () => {
    const broker = node.broker;
    if (!broker) throw new Error("expected the embedded broker");
    const envelope = received(all)[0]?.envelope as Envelope;
    const client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
    const { messageId } = await client.publish({
      url: `${node.publicUrl}${deliveryPath(all)}`,
      body: JSON.stringify(envelope),
      headers: { "content-type": "application/cloudevents+json" },
      retries: 0,
    });
    await waitFor(async () => (await deliveredTo(all, [messageId])) === 1, 10_000, "the replay");
    expect(received(all).map((entry) => entry.id)).toEqual([envelope.id]);
    expect(node.host!.inspect(all).inboxSize).toBe(1);
  });
});
