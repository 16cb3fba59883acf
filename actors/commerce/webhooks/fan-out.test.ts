// The fan-out under many subscriptions: what it holds at once stays a page, and every subscriber still gets the event.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import { fanOut, fanOutPageSize } from "./fan-out.ts";
import { deliveryId, WEBHOOK_FAN_OUT, type WebhookDelivery } from "./messages.ts";
import type { WebhookStore } from "./store.ts";
import { confirmedEvent, testStore } from "./test-support.ts";

const subscribers = 50_000;
let db: Awaited<ReturnType<typeof testStore>>;

beforeAll(async () => {
  db = await testStore("fan_out");
  // As many subscriptions as a webhooks:admin caller may create, in one statement (50,000 API calls would be the
  // slow part of the test): order.confirmed for all, order.rejected for every tenth; and some of neither.
  await db.sql`
    INSERT INTO webhook_subscriptions (id, url, events, secret, created_at)
    SELECT 'whsub_' || lpad(n::text, 16, '0'), 'https://h' || n || '.example/hook',
      CASE WHEN n % 10 = 0 THEN 'order.confirmed order.rejected' ELSE 'order.confirmed' END,
      'whsec_' || md5(n::text), now() - interval '1 hour' + n * interval '1 ms'
    FROM generate_series(1, ${subscribers}) AS n`;
  await db.sql`
    INSERT INTO webhook_subscriptions (id, url, events, secret, deleted_at)
    VALUES ('whsub_deleted000000001', 'https://gone.example/hook', 'order.confirmed', 'whsec_x', now()),
      ('whsub_cancelonly0000001', 'https://other.example/hook', 'order.cancelled', 'whsec_y', null)`;
}, 60_000);
afterAll(() => db.close());

/** The store, counting the most subscriptions any one read handed out. */
function countingStore() {
  const store = db.store;
  const reads = { largest: 0 };
  const counted =
    <T extends unknown[]>(read: (...args: T) => Promise<unknown[]>) =>
    async (...args: T) => {
      const rows = await read(...args);
      reads.largest = Math.max(reads.largest, rows.length);
      return rows;
    };
  const wrapped = {
    listSubscriptions: counted(store.listSubscriptions.bind(store)),
    pageSubscriptions: counted(store.pageSubscriptions.bind(store)),
    listAttempts: store.listAttempts.bind(store),
    recordAttempt: store.recordAttempt.bind(store),
  } as Pick<WebhookStore, "pageSubscriptions" | "listAttempts" | "recordAttempt">;
  return { store: wrapped, reads };
}

/**
 * Keeps only the delivery ids (not 50,000 envelopes), the largest send and the continuations (`WebhookFanOut`, kept
 * whole, to be delivered next); `failAt` fails that send.
 */
function countingTransport(failAt?: number) {
  const ids = new Set<string>();
  const state = {
    ids,
    sends: 0,
    largest: 0,
    subscriptions: new Set<string>(),
    continuations: [] as Envelope[],
  };
  return {
    state,
    async send(envelopes: Envelope[]) {
      state.sends++;
      if (state.sends === failAt) throw new Error("broker down");
      state.largest = Math.max(state.largest, envelopes.length);
      for (const envelope of envelopes) {
        if (envelope.type === WEBHOOK_FAN_OUT) {
          state.continuations.push(envelope);
          continue;
        }
        ids.add(envelope.id);
        state.subscriptions.add((envelope.data as WebhookDelivery).subscriptionId);
      }
    },
  };
}

/** The whole fan-out of `event`, as the queue runs it: each continuation it sends, delivered in turn. */
async function fanOutAll(
  options: Parameters<typeof fanOut>[0] & { transport: ReturnType<typeof countingTransport> },
  event: Envelope,
): Promise<{ deliveries: number; parts: TurnOutcome[] }> {
  const parts = [await fanOut(options, event)];
  for (let next = options.transport.state.continuations.shift(); next; ) {
    parts.push(await fanOut(options, next));
    next = options.transport.state.continuations.shift();
  }
  const deliveries = parts.reduce((sum, part) => sum + (part.reply as { deliveries: number }).deliveries, 0);
  return { deliveries, parts };
}

test(`one event to ${subscribers.toLocaleString("en")} subscriptions: each gets one delivery, and the fan-out holds one page at a time`, async () => {
  const { store, reads } = countingStore();
  const transport = countingTransport();
  const event = confirmedEvent("o-many");
  const outcome = await fanOutAll({ store, transport }, event);

  expect(outcome.deliveries).toBe(subscribers);
  // What users rely on: every active subscription to the event, once; none deleted, none to another event.
  expect(transport.state.ids.size).toBe(subscribers);
  expect(transport.state.subscriptions.size).toBe(subscribers);
  expect(transport.state.subscriptions.has("whsub_deleted000000001")).toBe(false);
  expect(transport.state.subscriptions.has("whsub_cancelonly0000001")).toBe(false);
  expect(transport.state.ids.has(await deliveryId(event.id, "whsub_0000000000012345"))).toBe(true);
  // The bound: no read and no send handled more than a page of subscriptions.
  expect(reads.largest).toBeLessThanOrEqual(fanOutPageSize);
  expect(transport.state.largest).toBeLessThanOrEqual(fanOutPageSize);
}, 60_000);

test("a send that fails midway fails the fan-out; its redelivery sends every delivery, with the same ids", async () => {
  const { store } = countingStore();
  const event = confirmedEvent("o-retried");
  const failing = countingTransport(3);
  await expect(fanOut({ store, transport: failing }, event)).rejects.toThrow("broker down");
  const retried = countingTransport();
  await fanOutAll({ store, transport: retried }, event);
  expect(retried.state.ids.size).toBe(subscribers);
  // What went before the failure is sent again under the same ids: the broker and the inboxes drop the copies.
  for (const id of failing.state.ids) expect(retried.state.ids.has(id)).toBe(true);
  // Another event, subscribed to by every tenth: only those.
  const rejected = countingTransport();
  const event2 = createEnvelope({
    type: "OrderRejected",
    source: "edgewise://order",
    data: { orderId: "o-r", version: 2, customerId: "c1", reason: "out_of_stock", skus: ["sku-1"] },
    target: "webhooks/outbound",
  });
  expect((await fanOutAll({ store, transport: rejected }, event2)).deliveries).toBe(subscribers / 10);
  expect(rejected.state.largest).toBeLessThanOrEqual(fanOutPageSize);
}, 60_000);
