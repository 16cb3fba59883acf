// The webhooks consumer end to end: fan-out by event filter, signed POSTs to a real receiver, retries, refusals.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { withConsumers } from "../../runtime/consumers.ts";
import type { ActorHost } from "../../runtime/host.ts";
import { webhooksConsumer } from "./consumer.ts";
import { NON_RETRYABLE_WEBHOOK_CODES } from "./errors.ts";
import { type CreatedSubscription, createSubscription, deleteSubscription } from "./subscriptions.ts";
import { type Hit, recordingTransport, startHookReceiver, testStore } from "./test-support.ts";
import { edgewiseRejection } from "../../../test/support/errors.ts";

let db: Awaited<ReturnType<typeof testStore>>;
let receiver: ReturnType<typeof startHookReceiver>;
/** Per path: how the receiver answers its nth request there. */
const answers = new Map<string, (hit: Hit, nth: number) => Response | Promise<Response>>();

beforeAll(async () => {
  db = await testStore("consumer");
  receiver = startHookReceiver((hit, nth) => answers.get(hit.path)?.(hit, nth) ?? new Response("ok"));
});
afterAll(async () => {
  receiver.stop();
  await db.close();
});

const noDns = async (): Promise<string[]> => {
  throw new Error("no DNS in this test");
};
const allowPrivate = { resolve: noDns, allowPrivate: true };

function setup(
  options: { allowPrivate?: boolean; resolve?: (host: string) => Promise<string[]>; timeoutMs?: number } = {},
) {
  const transport = recordingTransport();
  const consumer = webhooksConsumer({
    store: db.store,
    transport,
    resolve: options.resolve ?? noDns,
    allowPrivate: options.allowPrivate ?? true,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  return { transport, consumer };
}

const subscribe = (path: string, events: string[]) =>
  createSubscription({ store: db.store, policy: allowPrivate }, { url: receiver.url(path), events });

function orderEvent(type: "OrderConfirmed" | "OrderRejected" | "OrderCancelled", orderId: string): Envelope {
  const data =
    type === "OrderConfirmed"
      ? {
          orderId,
          version: 3,
          customerId: "c1",
          items: [{ sku: "sku-1", quantity: 2, unitPriceCents: 500 }],
          totalCents: 1000,
        }
      : type === "OrderRejected"
        ? { orderId, version: 2, customerId: "c1", reason: "out_of_stock", skus: ["sku-1"] }
        : { orderId, version: 4, customerId: "c1", skus: ["sku-1"], wasConfirmed: true, totalCents: 1000 };
  return createEnvelope({
    type,
    source: `edgewise://actor/order/${orderId}`,
    data,
    target: "webhooks/outbound",
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  });
}

describe("webhooks/outbound fan-out and webhooks/{id} delivery", () => {
  let confirmedOnly: CreatedSubscription;
  let rejectedOrCancelled: CreatedSubscription;

  beforeAll(async () => {
    confirmedOnly = await subscribe("/a", ["order.confirmed"]);
    rejectedOrCancelled = await subscribe("/b", ["order.rejected", "order.cancelled"]);
    const gone = await subscribe("/gone", ["order.confirmed", "order.rejected", "order.cancelled"]);
    await deleteSubscription(db.store, gone.id);
  });

  test("each event goes to the subscriptions that filter it in, signed per the spec", async () => {
    const { transport, consumer } = setup();
    const confirmed = orderEvent("OrderConfirmed", "o-1");
    const cancelled = orderEvent("OrderCancelled", "o-1");
    expect(await consumer.receive(confirmed)).toEqual({
      duplicate: false,
      reply: { event: "order.confirmed", deliveries: 1 },
    });
    expect(await consumer.receive(cancelled)).toMatchObject({ reply: { deliveries: 1 } });
    expect(transport.sent.map((envelope) => envelope.target)).toEqual([
      `webhooks/${confirmedOnly.id}`,
      `webhooks/${rejectedOrCancelled.id}`,
    ]);
    const [first] = transport.sent;
    expect(first).toMatchObject({
      id: `${confirmed.id}.${confirmedOnly.id}`,
      type: "WebhookDelivery",
      causationid: confirmed.id,
      correlationid: confirmed.id,
      traceparent: confirmed.traceparent,
      data: { subscriptionId: confirmedOnly.id, event: { id: confirmed.id, type: "OrderConfirmed" } },
    });
    expect((first as Envelope<{ event: Envelope }>).data?.event.target).toBeUndefined();

    for (const delivery of transport.sent) expect((await consumer.receive(delivery)).duplicate).toBe(false);
    const [toA] = receiver.at("/a");
    const [toB] = receiver.at("/b");
    expect(toA?.headers["content-type"]).toBe("application/json");
    expect(toA?.headers["webhook-id"]).toBe(confirmed.id);
    const payload = new Webhook(confirmedOnly.secret).verify(toA?.body ?? "", toA?.headers ?? {});
    const { target: _, ...cloudEvent } = confirmed;
    expect(payload).toEqual({ ...cloudEvent, type: "order.confirmed" });
    expect(new Webhook(rejectedOrCancelled.secret).verify(toB?.body ?? "", toB?.headers ?? {})).toMatchObject(
      {
        id: cancelled.id,
        type: "order.cancelled",
        specversion: "1.0",
        data: { orderId: "o-1", wasConfirmed: true },
      },
    );
    expect(() =>
      new Webhook(rejectedOrCancelled.secret).verify(toA?.body ?? "", toA?.headers ?? {}),
    ).toThrow();

    // At least once: the same fan-out again sends the same ids, and a delivered one is not POSTed again.
    await consumer.receive(confirmed);
    expect(transport.sent[2]).toEqual(first as Envelope);
    expect(await consumer.receive(first as Envelope)).toEqual({ duplicate: true, reply: undefined });
    expect(receiver.at("/a")).toHaveLength(1);
  });

  test("an event nobody subscribes to sends nothing; fan-out waits for the transport and fails with it", async () => {
    const { transport, consumer } = setup();
    await deleteSubscription(db.store, rejectedOrCancelled.id);
    expect(await consumer.receive(orderEvent("OrderRejected", "o-2"))).toMatchObject({
      reply: { deliveries: 0 },
    });
    expect(transport.sent).toEqual([]);

    transport.failNext = new Error("broker down");
    await expect(consumer.receive(orderEvent("OrderConfirmed", "o-2"))).rejects.toThrow("broker down");
    rejectedOrCancelled = await subscribe("/b", ["order.rejected", "order.cancelled"]);
  });

  test("a receiver answering 500 makes the delivery throw a retryable error; the retry keeps webhook-id", async () => {
    const sub = await subscribe("/flaky", ["order.confirmed"]);
    answers.set("/flaky", (_hit, nth) => new Response("nope", { status: nth === 1 ? 500 : 200 }));
    const { transport, consumer } = setup();
    const event = orderEvent("OrderConfirmed", "o-3");
    await consumer.receive(event);
    const delivery = transport.sent.find((envelope) => envelope.target === `webhooks/${sub.id}`) as Envelope;

    const error = await edgewiseRejection(consumer.receive(delivery));
    expect(error).toMatchObject({ code: "webhooks.delivery_failed", status: 502, meta: { statusCode: 500 } });
    expect(NON_RETRYABLE_WEBHOOK_CODES).not.toContain(String(error.code));
    expect(await consumer.receive(delivery)).toMatchObject({
      duplicate: false,
      reply: { status: 200, attempt: 2 },
    });

    const hits = receiver.at("/flaky");
    expect(hits.map((hit) => hit.headers["webhook-id"])).toEqual([event.id, event.id]);
    for (const hit of hits) expect(new Webhook(sub.secret).verify(hit.body, hit.headers)).toBeTruthy();
    const log = await db.store.listAttempts(sub.id, event.id);
    expect(log.map(({ attempt, statusCode, outcome }) => [attempt, statusCode, outcome])).toEqual([
      [1, 500, "failed"],
      [2, 200, "delivered"],
    ]);
  });

  test("a redirect is a failure and is never followed", async () => {
    const sub = await subscribe("/moved", ["order.confirmed"]);
    answers.set(
      "/moved",
      () => new Response(null, { status: 302, headers: { location: receiver.url("/inside") } }),
    );
    const { transport, consumer } = setup();
    await consumer.receive(orderEvent("OrderConfirmed", "o-4"));
    const delivery = transport.sent.find((envelope) => envelope.target === `webhooks/${sub.id}`) as Envelope;
    const error = await edgewiseRejection(consumer.receive(delivery));
    expect(error).toMatchObject({ code: "webhooks.delivery_failed", meta: { statusCode: 302 } });
    expect(error.message).toContain("redirects are not followed");
    expect(receiver.at("/moved")).toHaveLength(1);
    expect(receiver.at("/inside")).toHaveLength(0);
  });

  test("a timeout and a closed port are retryable failures", async () => {
    const slow = await subscribe("/slow", ["order.confirmed"]);
    answers.set("/slow", async () => {
      await Bun.sleep(1000);
      return new Response("late");
    });
    const closed = await createSubscription(
      { store: db.store, policy: allowPrivate },
      { url: "http://127.0.0.1:1/hook", events: ["order.confirmed"] },
    );
    const { transport, consumer } = setup({ timeoutMs: 150 });
    await consumer.receive(orderEvent("OrderConfirmed", "o-5"));
    const to = (id: string) =>
      transport.sent.find((envelope) => envelope.target === `webhooks/${id}`) as Envelope;
    const timedOut = await edgewiseRejection(consumer.receive(to(slow.id)));
    expect(timedOut.code).toBe("webhooks.delivery_failed");
    expect(timedOut.message).toContain("no answer within 150 ms");
    expect((await edgewiseRejection(consumer.receive(to(closed.id)))).code).toBe("webhooks.delivery_failed");
    await deleteSubscription(db.store, slow.id);
    await deleteSubscription(db.store, closed.id);
  });

  test("a delivery for a subscription deleted since is a no-op", async () => {
    const sub = await subscribe("/deleted", ["order.confirmed"]);
    const { transport, consumer } = setup();
    await consumer.receive(orderEvent("OrderConfirmed", "o-6"));
    const delivery = transport.sent.find((envelope) => envelope.target === `webhooks/${sub.id}`) as Envelope;
    await deleteSubscription(db.store, sub.id);
    expect(await consumer.receive(delivery)).toEqual({
      duplicate: false,
      reply: { skipped: "subscription deleted" },
    });
    expect(receiver.at("/deleted")).toHaveLength(0);
  });

  test("without allowPrivate the guard refuses the target on every attempt: non-retryable, nothing sent", async () => {
    const literal = await subscribe("/literal", ["order.confirmed"]);
    const named = await createSubscription(
      { store: db.store, policy: allowPrivate },
      { url: `http://hooks.test:${receiver.port}/named`, events: ["order.confirmed"] },
    );
    // DNS changed since the subscription was made: the name now points at loopback.
    const { transport, consumer } = setup({
      allowPrivate: false,
      resolve: async () => ["93.184.215.14", "127.0.0.1"],
    });
    const event = orderEvent("OrderConfirmed", "o-7");
    await consumer.receive(event);
    for (const sub of [literal, named]) {
      const delivery = transport.sent.find(
        (envelope) => envelope.target === `webhooks/${sub.id}`,
      ) as Envelope;
      const error = await edgewiseRejection(consumer.receive(delivery));
      expect(error).toMatchObject({ code: "webhooks.target_refused", status: 422 });
      expect(NON_RETRYABLE_WEBHOOK_CODES).toContain(String(error.code));
      expect(error.message).not.toContain("/literal");
      expect(await db.store.listAttempts(sub.id, event.id)).toMatchObject([
        { attempt: 1, outcome: "refused" },
      ]);
    }
    // The operator's record of the named target says what the name resolved to; the error does not.
    const [namedAttempt] = await db.store.listAttempts(named.id, event.id);
    expect(namedAttempt?.error).toBe("address: hooks.test resolves to a loopback address (127.0.0.1)");
    expect(receiver.at("/literal")).toHaveLength(0);
    expect(receiver.at("/named")).toHaveLength(0);

    // A name that does not resolve may be a DNS hiccup: retryable.
    const { consumer: noDnsConsumer } = setup({ allowPrivate: false });
    const delivery = transport.sent.find(
      (envelope) => envelope.target === `webhooks/${named.id}`,
    ) as Envelope;
    expect((await edgewiseRejection(noDnsConsumer.receive(delivery))).code).toBe("webhooks.delivery_failed");
    for (const sub of [literal, named]) await deleteSubscription(db.store, sub.id);
  });

  test("bad input is poison: unknown event types, foreign deliveries, invalid envelopes", async () => {
    const { consumer } = setup();
    const placed = createEnvelope({
      type: "OrderPlaced",
      source: "s",
      data: {},
      target: "webhooks/outbound",
    });
    expect((await edgewiseRejection(consumer.receive(placed))).code).toBe("message.unknown_type");
    const other = { subscriptionId: confirmedOnly.id, event: orderEvent("OrderConfirmed", "o-8") };
    const misrouted = createEnvelope({
      type: "WebhookDelivery",
      source: "s",
      data: other,
      target: "webhooks/whsub_0000000000000000",
    });
    expect((await edgewiseRejection(consumer.receive(misrouted))).code).toBe("message.invalid");
    const wrongType = createEnvelope({
      type: "Nope",
      source: "s",
      data: other,
      target: `webhooks/${confirmedOnly.id}`,
    });
    expect((await edgewiseRejection(consumer.receive(wrongType))).code).toBe("message.unknown_type");
    const broken = { ...placed, specversion: "0.3" } as unknown as Envelope;
    expect((await edgewiseRejection(consumer.receive(broken))).code).toBe("envelope.invalid");
  });

  test("withConsumers routes both keys of the webhooks type to the consumer", async () => {
    const { transport, consumer } = setup();
    const actors: ActorHost = {
      ask: async () => {
        throw new Error("no actors here");
      },
      receive: async () => {
        throw new Error("not for actors");
      },
    };
    const host = withConsumers(actors, [consumer]);
    const event = orderEvent("OrderConfirmed", "o-9");
    expect((await host.receive(event)).duplicate).toBe(false);
    const delivery = transport.sent.find((envelope) => envelope.target === `webhooks/${confirmedOnly.id}`);
    expect(await host.receive(delivery as Envelope)).toMatchObject({ reply: { status: 200, attempt: 1 } });
    expect(receiver.at("/a").map((hit) => hit.headers["webhook-id"])).toContain(event.id);
  });
});
