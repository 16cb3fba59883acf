// Messaging on Durable Objects: under `wrangler dev`, the relay publishes through the local broker (Postgres) and
// the broker's signed deliveries come back to the Worker's /_edgewise/deliver endpoint. Only 127.0.0.1.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@upstash/qstash";
import { deliveryPath } from "../../actors/queue/qstash-transport.ts";
import { type ActorAddress, actorSource, formatAddress } from "../../actors/runtime/index.ts";
import { type Broker, startBroker } from "../../deploy/local/broker/index.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { restartablePort } from "../support/ports.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema, waitFor } from "../broker/helpers.ts";
import { HttpDriver } from "../conformance/http-driver.ts";
import type { Snapshot } from "../conformance/protocol.ts";
import { freePort, wranglerDev, wranglerEnv } from "../support/wrangler.ts";

const root = join(import.meta.dir, "../..");
const schema = uniqueSchema("messaging_cf");
const persistTo = mkdtempSync(join(tmpdir(), "edgewise-messaging-workerd-"));

let broker: Broker;
let worker: HttpDriver;
let publicUrl: string;
const brokerLog: string[] = [];

beforeAll(async () => {
  broker = await startBroker({
    // Restarted on the same port after a 20 s outage below: not port 0's ephemeral one, which an outgoing
    // connection of the machine may hold by then.
    port: restartablePort(),
    databaseUrl: TEST_DATABASE_URL,
    schema,
    timeScale: 0.01,
    log: (line) => brokerLog.push(line),
  });
  const port = freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  worker = await HttpDriver.start({
    name: "workerd",
    cwd: root,
    command: () =>
      wranglerDev({
        config: "test/messaging/cloudflare/wrangler.toml",
        port,
        persistTo,
        vars: {
          QSTASH_URL: broker.url,
          QSTASH_TOKEN: broker.token,
          QSTASH_CURRENT_SIGNING_KEY: broker.currentSigningKey,
          QSTASH_NEXT_SIGNING_KEY: broker.nextSigningKey,
          PUBLIC_URL: publicUrl,
        },
      }),
    readyPattern: /Ready on https?:\/\/[\w.]+:(\d+)/,
    processGroup: true, // wrangler runs workerd as children: SIGKILL the whole group
    env: wranglerEnv,
    startTimeoutMs: 25_000,
  });
}, 30_000);

afterAll(async () => {
  await worker?.close();
  await broker?.stop();
  await dropSchema(schema);
  rmSync(persistTo, { recursive: true, force: true });
});

async function ask<T>(type: string, key: string, message: string, data: unknown): Promise<T> {
  const outcome = await worker.ask(type, key, message, data);
  if (!outcome.ok) throw new Error(`${type}/${key} ${message}: ${JSON.stringify(outcome.error)}`);
  return outcome.reply as T;
}

const inspect = (address: ActorAddress): Promise<Snapshot> => worker.inspect(address.type, address.key);
const deliveryUrl = (address: ActorAddress) => `${publicUrl}${deliveryPath(address)}`;

interface BrokerEvent {
  messageId: string;
  state: string;
  url: string;
  responseStatus?: number;
}

async function brokerEvents(query: Record<string, string>): Promise<BrokerEvent[]> {
  const response = await fetch(
    `${broker.url}/v2/events?${new URLSearchParams({ count: "1000", ...query })}`,
    {
      headers: { authorization: `Bearer ${broker.token}` },
    },
  );
  return ((await response.json()) as { events: BrokerEvent[] }).events;
}

/** Polls, and on timeout says what the broker saw (the usual culprit when nothing arrives). */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 8_000): Promise<void> {
  try {
    await waitFor(check, timeoutMs, what);
  } catch (error) {
    const events = await brokerEvents({}).catch(() => []);
    throw new Error(
      `${(error as Error).message}\nbroker events: ${JSON.stringify(events.slice(0, 20))}\nbroker log: ${brokerLog.join("\n")}`,
    );
  }
}

const producer = { type: "counter", key: "producer" };
const target = { type: "counter", key: "target" };
const subscriberOfProducer = { type: "subscriber", key: "of-producer" };
const subscriberAll = { type: "subscriber", key: "all" };

interface SubscriberState {
  received: Array<{ id: string; from: string; note: string; envelope: Envelope }>;
}

describe("messaging on Durable Objects through the broker (wrangler dev)", () => {
  let commandIds: string[] = [];
  let eventId = "";

  test("a command from one actor reaches its target through signed delivery, once, and the outbox drains", async () => {
    ({ ids: commandIds } = await ask<{ ids: string[] }>("counter", "producer", "SendTo", {
      key: "target",
      count: 3,
    }));
    expect(commandIds).toHaveLength(3);
    // Increments of 1, 2 and 3: any one applied twice, or lost, shows in the sum.
    await eventually(
      async () => ((await inspect(target)).state as { count: number } | undefined)?.count === 6,
      "target",
    );
    await eventually(async () => (await inspect(producer)).outboxSize === 0, "producer's outbox to drain");

    // They went through the broker: three messages delivered, answered 200, to the target's delivery URL. (The
    // broker logs an outcome after the HTTP call returns, so the actor may have committed a moment before.)
    const deliveredToTarget = () => brokerEvents({ url: deliveryUrl(target), state: "DELIVERED" });
    await eventually(async () => (await deliveredToTarget()).length === 3, "the broker's DELIVERED events");
    const delivered = await deliveredToTarget();
    expect(delivered).toHaveLength(3);
    expect(delivered.every((event) => event.responseStatus === 200)).toBe(true);

    await Bun.sleep(300); // nothing more arrives late
    const after = await inspect(target);
    expect(after.state).toMatchObject({ count: 6 });
    expect(after.inboxSize).toBe(3);
  });

  test("a published event reaches the subscribers named only by a subscription", async () => {
    ({ id: eventId } = await ask<{ id: string }>("counter", "producer", "Announce", { note: "hello" }));
    for (const address of [subscriberOfProducer, subscriberAll]) {
      await eventually(
        async () => ((await inspect(address)).state as SubscriberState | undefined)?.received.length === 1,
        `the event at ${formatAddress(address)}`,
      );
      const { received } = (await inspect(address)).state as SubscriberState;
      expect(received[0]).toMatchObject({ id: eventId, from: "producer", note: "hello" });
      expect(received[0]?.envelope.target).toBe(formatAddress(address));
    }
    await eventually(async () => (await inspect(producer)).outboxSize === 0, "producer's outbox to drain");
    for (const address of [subscriberOfProducer, subscriberAll]) {
      await eventually(
        async () => (await brokerEvents({ url: deliveryUrl(address), state: "DELIVERED" })).length === 1,
        `the broker's DELIVERED event for ${formatAddress(address)}`,
      );
    }
  });

  test("a duplicate delivery through the broker is acknowledged and applied once", async () => {
    const client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
    // The exact event envelope the subscriber handled, and a command with the id the producer sent.
    const event = ((await inspect(subscriberAll)).state as SubscriberState).received[0]?.envelope as Envelope;
    const command = createEnvelope({
      id: commandIds[0] as string,
      type: "Increment",
      source: actorSource(producer),
      data: { by: 1 },
      target: formatAddress(target),
    });
    const replays = [
      { address: subscriberAll, envelope: event },
      { address: target, envelope: command },
    ];
    const published = await Promise.all(
      replays.map(({ address, envelope }) =>
        client.publish({
          url: deliveryUrl(address),
          body: JSON.stringify(envelope),
          headers: { "content-type": "application/cloudevents+json" },
          retries: 0,
        }),
      ),
    );
    const messageIds = published.map((result) => result.messageId);
    await eventually(
      async () => (await brokerEvents({ messageIds: messageIds.join(","), state: "DELIVERED" })).length === 2,
      "the replays to be delivered",
    );
    const delivered = await brokerEvents({ messageIds: messageIds.join(","), state: "DELIVERED" });
    expect(delivered.every((entry) => entry.responseStatus === 200)).toBe(true);

    const subscriber = await inspect(subscriberAll);
    expect((subscriber.state as SubscriberState).received.map((entry) => entry.id)).toEqual([eventId]);
    expect(subscriber.inboxSize).toBe(1);
    const counter = await inspect(target);
    expect(counter.state).toMatchObject({ count: 6 });
    expect(counter.inboxSize).toBe(3);
  });

  test("an unsigned or forged delivery gets 401 and changes nothing", async () => {
    const before = await inspect(target);
    const url = deliveryUrl(target);
    const forged = createEnvelope({
      type: "Increment",
      source: "edgewise://attacker",
      data: { by: 1000 },
      target: formatAddress(target),
    });
    const body = JSON.stringify(forged);
    const bytes = new TextEncoder().encode(body);
    const headers = { "content-type": "application/cloudevents+json" };
    const attempts: Array<Record<string, string>> = [
      headers,
      { ...headers, "upstash-signature": "not-a-jwt" },
      // The right shape and claims, signed with a key that is not the broker's.
      { ...headers, "upstash-signature": await createSigner("sig_forgedForgedForgedForged")(url, bytes) },
      // The broker's key, but over another body: the body hash does not match.
      {
        ...headers,
        "upstash-signature": await createSigner(broker.currentSigningKey)(
          url,
          new TextEncoder().encode("{}"),
        ),
      },
      // The broker's key, but for another actor's URL.
      {
        ...headers,
        "upstash-signature": await createSigner(broker.currentSigningKey)(deliveryUrl(producer), bytes),
      },
    ];
    for (const attempt of attempts) {
      const response = await fetch(url, { method: "POST", headers: attempt, body });
      expect(response.status).toBe(401);
      await response.body?.cancel();
    }
    const after = await inspect(target);
    expect(after.state).toEqual(before.state);
    expect(after.version).toBe(before.version);
    expect(after.inboxSize).toBe(before.inboxSize);
  });

  test("the broker down for 20 s: the outbox keeps the messages behind the relay's breaker, and drains within seconds of its return", async () => {
    const port = Number(new URL(broker.url).port);
    const sender = { type: "counter", key: "outage-sender" };
    const receiver = { type: "counter", key: "outage-target" };
    await broker.stop();
    await ask("counter", sender.key, "SendTo", { key: receiver.key, count: 2 });
    await Bun.sleep(20_000);
    expect((await inspect(sender)).outboxSize).toBe(2);
    // The relay's sends went through the isolate's breaker: it opened, and let a probe through every 5 s.
    expect(worker.log).toContain("relay breaker broker: closed → open");
    broker = await startBroker({
      port,
      databaseUrl: TEST_DATABASE_URL,
      schema,
      timeScale: 0.01,
      log: (line) => brokerLog.push(line),
    });
    const back = performance.now();
    await eventually(
      async () => ((await inspect(receiver)).state as { count: number } | undefined)?.count === 3,
      "the outage's messages",
      20_000,
    );
    // The breaker's next probe (5 s after the last) plus up to 1 s of jitter, and the delivery: the relay's own
    // backoff after 20 s of failures would be 16-32 s.
    expect(performance.now() - back).toBeLessThan(9_000);
    await eventually(async () => (await inspect(sender)).outboxSize === 0, "the sender's outbox to drain");
    expect(worker.log).toContain("relay breaker broker: half-open → closed");
  }, 60_000);
});
