// A published event near the message limit: each subscriber's delivery adds its target, and must still fit the broker.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { LocalActorHost } from "../../actors/hosts/local/host.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { QStashTransport } from "../../actors/queue/qstash-transport.ts";
import { defineActor, maxMessageBytes, SubscriptionRegistry, subscribe } from "../../actors/runtime/index.ts";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { dropSchema, startReceiver, startTestBroker, uniqueSchema, waitFor } from "./helpers.ts";

const schema = uniqueSchema("event_size");
const dir = mkdtempSync(join(tmpdir(), "edgewise-event-size-"));
const receiver = startReceiver();
/** The longest key an actor can have: the delivery's target is as long as it gets. */
const key = "k".repeat(256);
const targetMember = `,"target":"listener/${key}"`.length;

const announcer = defineActor({
  type: "announcer",
  state: v.object({}),
  initial: () => ({}),
  messages: { Announce: v.object({ pad: v.string() }) },
  handlers: {
    Announce(ctx, { pad }) {
      ctx.publish("Announced", { pad });
    },
  },
});

let broker: Broker;
let host: LocalActorHost;
beforeAll(async () => {
  broker = await startTestBroker(schema, { timeScale: 0.0001 });
  host = new LocalActorHost({
    actors: [announcer],
    db: openBunSqlite(join(dir, "actors.db")),
    transport: new QStashTransport({
      baseUrl: broker.url,
      token: broker.token,
      retries: 0,
      deliveryUrl: () => receiver.url("/deliver"),
    }),
    subscriptions: new SubscriptionRegistry([
      subscribe({ event: "Announced", actor: "listener", keys: () => key }),
    ]),
    onBackgroundError: () => {},
  }).start();
});
afterAll(async () => {
  await host.stop();
  await broker.stop();
  receiver.stop();
  await dropSchema(schema);
  rmSync(dir, { recursive: true, force: true });
});

const announce = (pad: number) =>
  host.ask({ type: "announcer", key: "a" }, "Announce", { pad: "x".repeat(pad) }).then(
    () => "ok",
    (error: { code?: string }) => error.code ?? String(error),
  );

test("an event the turn accepts is one the broker accepts for every subscriber; one that would not fit fails its turn", async () => {
  // A small event first: its delivery's size tells the envelope's overhead around the pad.
  expect(await announce(1_000)).toBe("ok");
  await waitFor(() => receiver.deliveries.length === 1, 10_000, "the small event's delivery");
  const published = (pad: number) => receiver.deliveries[0]!.body.length - targetMember + pad - 1_000;

  // As published, just under the limit; with the target each delivery adds, over it. The turn accepted it before,
  // and the broker refused the delivery (413) on every retry: the actor's outbox was stuck behind it for good.
  const over = 1_000 + (maxMessageBytes - 50 - published(1_000));
  expect(published(over) + targetMember).toBeGreaterThan(maxMessageBytes);
  expect(await announce(over)).toBe("request.too_large");

  // Room for the longest target is kept, so the largest event a turn accepts is delivered whole.
  const fits = 1_000 + (maxMessageBytes - 340 - published(1_000));
  expect(await announce(fits)).toBe("ok");
  await waitFor(() => receiver.deliveries.length === 2, 10_000, "the large event's delivery");
  expect(receiver.deliveries[1]!.body.length).toBeLessThanOrEqual(maxMessageBytes);
  await waitFor(() => host.outboxBacklog().pending === 0, 10_000, "an empty outbox");
}, 30_000);
