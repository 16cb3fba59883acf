// One delivery of the webhook fan-out stays within a Worker's subrequest budget, however many subscriptions there are.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { countingQStash, freePlanSubrequests } from "../../queue/counting-qstash.ts";
import { fanOut, fanOutPagesPerDelivery, fanOutQueueRequests } from "./fan-out.ts";
import { WEBHOOK_FAN_OUT, type WebhookDelivery } from "./messages.ts";
import type { WebhookStore } from "./store.ts";
import { confirmedEvent, testStore } from "./test-support.ts";

const subscribers = 5_000;

let db: Awaited<ReturnType<typeof testStore>>;

beforeAll(async () => {
  db = await testStore("fan_out_subrequests");
  await db.sql`
    INSERT INTO webhook_subscriptions (id, url, events, secret, created_at)
    SELECT 'whsub_' || lpad(n::text, 16, '0'), 'https://h' || n || '.example/hook', 'order.confirmed',
      'whsec_' || md5(n::text), now() - interval '1 hour' + n * interval '1 ms'
    FROM generate_series(1, ${subscribers}) AS n`;
}, 60_000);
afterAll(() => db.close());

/** The store, counting its reads. */
function countingStore() {
  let reads = 0;
  const store: Pick<WebhookStore, "pageSubscriptions" | "listAttempts" | "recordAttempt"> = {
    pageSubscriptions: (page) => {
      reads++;
      return db.store.pageSubscriptions(page);
    },
    listAttempts: (...args) => db.store.listAttempts(...args),
    recordAttempt: (attempt) => db.store.recordAttempt(attempt),
  };
  return {
    store,
    reads: () => {
      const made = reads;
      reads = 0;
      return made;
    },
  };
}

test(`a fan-out to ${subscribers.toLocaleString("en")} subscriptions: no delivery makes more than ${fanOutQueueRequests} requests to the queue, and every subscriber gets the event once`, async () => {
  const { transport, published, requests } = countingQStash();
  const { store, reads } = countingStore();
  const event = confirmedEvent("o-subrequests");

  // The queue delivers the event, then each continuation the fan-out publishes, each as a request of its own.
  const perDelivery: Array<{ requests: number; reads: number }> = [];
  const delivered = new Set<string>();
  let next: Envelope | undefined = event;
  while (next) {
    await fanOut({ store, transport }, next);
    perDelivery.push({ requests: requests(), reads: reads() });
    next = published.find((envelope) => envelope.type === WEBHOOK_FAN_OUT && !delivered.has(envelope.id));
    if (next) delivered.add(next.id);
  }

  // What a Worker relies on: each delivery within the Free plan's 50 subrequests, with room for the read side's other
  // parts (the cache's Redis calls, the telemetry export) in the same invocation.
  for (const one of perDelivery) {
    expect(one.requests).toBeLessThanOrEqual(fanOutQueueRequests);
    expect(one.reads).toBeLessThanOrEqual(fanOutPagesPerDelivery);
  }
  expect(fanOutQueueRequests).toBeLessThan(freePlanSubrequests / 2);
  // 20 pages of 256, 4 a delivery.
  expect(perDelivery.length).toBe(5);

  // What users rely on: every subscriber, exactly once, nothing else.
  const deliveries = published.filter((envelope) => envelope.type !== WEBHOOK_FAN_OUT);
  const bySubscription = new Map<string, number>();
  for (const delivery of deliveries) {
    const id = (delivery.data as WebhookDelivery).subscriptionId;
    bySubscription.set(id, (bySubscription.get(id) ?? 0) + 1);
  }
  expect(bySubscription.size).toBe(subscribers);
  expect([...bySubscription.values()].every((count) => count === 1)).toBe(true);
  expect(new Set(deliveries.map((delivery) => delivery.id)).size).toBe(subscribers);
  for (const delivery of deliveries) expect((delivery.data as WebhookDelivery).event.id).toBe(event.id);
}, 60_000);

test("a continuation delivered twice sends the same messages under the same ids (the broker keeps one of each)", async () => {
  const { transport, published } = countingQStash();
  const { store } = countingStore();
  await fanOut({ store, transport }, confirmedEvent("o-twice"));
  const rest = published.find((envelope) => envelope.type === WEBHOOK_FAN_OUT) as Envelope;
  expect(rest.target).toBe("webhooks/outbound");
  expect(rest.data).toMatchObject({ after: `whsub_${String(4 * 256).padStart(16, "0")}` });

  const first = countingQStash();
  const again = countingQStash();
  const reply = await fanOut({ store, transport: first.transport }, rest);
  await fanOut({ store, transport: again.transport }, rest);
  expect(reply.reply).toMatchObject({
    deliveries: 1_024,
    continuesAfter: `whsub_${String(8 * 256).padStart(16, "0")}`,
  });
  expect(again.published.map((envelope) => envelope.id)).toEqual(
    first.published.map((envelope) => envelope.id),
  );
  // The continuation's id is its own: never a delivery's, never the event's.
  const ids = new Set(published.filter((e) => e.type !== WEBHOOK_FAN_OUT).map((e) => e.id));
  expect(ids.has(rest.id)).toBe(false);
  expect(rest.id).not.toBe((rest.data as { event: Envelope }).event.id);
}, 60_000);

test("a malformed continuation is refused as message.invalid (dead-lettered at once), not half applied", async () => {
  const { transport, published } = countingQStash();
  const { store } = countingStore();
  const bad = createEnvelope({
    type: WEBHOOK_FAN_OUT,
    source: "edgewise://webhooks/outbound",
    data: { event: confirmedEvent("o-bad"), after: "not-a-subscription" },
    target: "webhooks/outbound",
  });
  await expect(fanOut({ store, transport }, bad)).rejects.toMatchObject({ code: "message.invalid" });
  expect(published).toEqual([]);
});
