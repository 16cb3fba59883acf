// An event near the message limit fanned out to webhooks: each subscription's delivery wraps it and must fit the broker.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { Participants } from "../../actors/commerce/messages.ts";
import { webhooksConsumer } from "../../actors/commerce/webhooks/consumer.ts";
import { OUTBOUND_KEY } from "../../actors/commerce/webhooks/messages.ts";
import { postWithNodeHttp } from "../../actors/commerce/webhooks/node-post.ts";
import { PostgresWebhookStore } from "../../actors/commerce/webhooks/postgres-store.ts";
import { createSubscription } from "../../actors/commerce/webhooks/subscriptions.ts";
import { defineActor, maxMessageBytes, subscribe } from "../../actors/runtime/index.ts";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { dropSchema, startReceiver, TEST_DATABASE_URL, uniqueSchema, waitFor } from "./helpers.ts";

const schema = uniqueSchema("webhook_size");
const dir = mkdtempSync(join(tmpdir(), "edgewise-webhook-size-"));
const receivers = [startReceiver(), startReceiver()];

/** Publishes an OrderConfirmed of any size: the fan-out reads only its type. */
const confirmer = defineActor({
  type: "confirmer",
  state: v.object({}),
  initial: () => ({}),
  messages: { Confirm: v.object({ pad: v.string() }) },
  handlers: {
    Confirm(ctx, { pad }) {
      ctx.publish("OrderConfirmed", { pad });
    },
  },
});

let node: EdgewiseNode;
let store: PostgresWebhookStore;
let subscriptionIds: string[];
beforeAll(async () => {
  node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: TEST_DATABASE_URL,
      EDGEWISE_DATA_DIR: dir,
      EDGEWISE_DELIVERY_RETRIES: "2",
    }),
    actors: [confirmer],
    subscriptions: [
      subscribe({ event: "OrderConfirmed", actor: Participants.webhooks, keys: () => OUTBOUND_KEY }),
    ],
    extend: async ({ sql, transport }) => {
      store = new PostgresWebhookStore(sql);
      await store.migrate();
      const resolve = async (): Promise<string[]> => ["127.0.0.1"];
      return {
        consumers: [
          webhooksConsumer({ store, transport, resolve, allowPrivate: true, post: postWithNodeHttp }),
        ],
      };
    },
    schema,
    brokerTimeScale: 0.001,
    tracing: false,
    log: () => {},
  });
  const policy = { resolve: async () => ["127.0.0.1"], allowPrivate: true };
  subscriptionIds = [];
  for (const receiver of receivers) {
    const created = await createSubscription(
      { store, policy },
      { url: receiver.url("/hooks"), events: ["order.confirmed"] },
    );
    subscriptionIds.push(created.id);
  }
}, 30_000);
afterAll(async () => {
  await node?.stop();
  for (const receiver of receivers) receiver.stop();
  await dropSchema(schema);
  rmSync(dir, { recursive: true, force: true });
});

let asks = 0;
const confirm = (pad: number) =>
  node.host!.ask({ type: "confirmer", key: `c${asks++}` }, "Confirm", { pad: "x".repeat(pad) }).then(
    () => "ok",
    (error: { code?: string }) => error.code ?? String(error),
  );

const deadLetters = async (): Promise<unknown[]> => {
  const response = await fetch(`${node.brokerUrl}/v2/dlq`, {
    headers: { authorization: `Bearer ${node.broker?.token}` },
  });
  return ((await response.json()) as { messages: unknown[] }).messages;
};

test("an event the turn accepts but too large to wrap: a failed attempt per subscription, no dead letter", async () => {
  // A small event first: the POSTed payload is the published event without its target, with `order.confirmed`
  // (one character longer) as its type; the event ids and times have the same length every time.
  expect(await confirm(1_000)).toBe("ok");
  for (const receiver of receivers) {
    await waitFor(() => receiver.deliveries.length === 1, 10_000, "the small event's webhook");
  }
  const published = (pad: number) => receivers[0]!.deliveries[0]!.body.length - 1 + pad - 1_000;

  // Just under the largest event a turn accepts (the relay's room for a target is kept): with the subscription id
  // and the rest of the WebhookDelivery around it, over the limit. The queue refused the fan-out's send (413) on
  // every retry, and the fan-out was dead-lettered: no subscriber got the event.
  const large = 1_000 + (maxMessageBytes - 340 - published(1_000));
  expect(await confirm(large)).toBe("ok");
  const eventIds = new Set<string>();
  for (const id of subscriptionIds) {
    await waitFor(
      async () =>
        (await store.listAttempts(id)).some((attempt) => attempt.error?.startsWith("event too large")),
      15_000,
      "the failed attempt",
    );
    const attempts = (await store.listAttempts(id)).filter((attempt) => attempt.outcome === "failed");
    expect(attempts).toHaveLength(1);
    const [attempt] = attempts;
    expect(attempt?.statusCode).toBeNull();
    const bytes = Number(/: (\d+) bytes, limit (\d+)$/.exec(attempt?.error ?? "")?.[1]);
    expect(attempt?.error).toBe(
      `event too large for a webhook delivery: ${bytes} bytes, limit ${maxMessageBytes}`,
    );
    expect(bytes).toBeGreaterThan(maxMessageBytes);
    eventIds.add(attempt?.eventId ?? "");
  }
  expect(eventIds.size).toBe(1);

  // A later small event is delivered to both, as before; the large one never was, and nothing is dead-lettered.
  expect(await confirm(1_000)).toBe("ok");
  for (const receiver of receivers) {
    await waitFor(() => receiver.deliveries.length === 2, 10_000, "the second small event's webhook");
    expect(receiver.deliveries.every((delivery) => delivery.body.length < 10_000)).toBe(true);
  }
  // Retries at this time scale come within a second; give them the time to show.
  await Bun.sleep(2_000);
  expect(await deadLetters()).toEqual([]);
  for (const id of subscriptionIds) {
    expect((await store.listAttempts(id)).map((attempt) => attempt.outcome).sort()).toEqual([
      "delivered",
      "delivered",
      "failed",
    ]);
  }
}, 60_000);
