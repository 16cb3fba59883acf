// Managing subscriptions on the real Postgres: rotation's overlap (checked with standardwebhooks), listings, attempts.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { ManualClock } from "../../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { webhooksConsumer } from "./consumer.ts";
import {
  listDeliveryAttempts,
  listSubscriptionViews,
  rotateSubscriptionSecret,
  showSubscription,
} from "./management.ts";
import { PostgresWebhookStore } from "./postgres-store.ts";
import { createSubscription, deleteSubscription } from "./subscriptions.ts";
import { recordingTransport, startHookReceiver, testStore } from "./test-support.ts";
import { edgewiseRejection } from "../../../test/support/errors.ts";

let db: Awaited<ReturnType<typeof testStore>>;
let receiver: ReturnType<typeof startHookReceiver>;
const clock = new ManualClock(Date.now());
const policy = { resolve: async (): Promise<string[]> => [], allowPrivate: true };

beforeAll(async () => {
  db = await testStore("management");
  receiver = startHookReceiver(
    (hit) => new Response(null, { status: hit.path.startsWith("/failing") ? 500 : 204 }),
  );
});
afterAll(async () => {
  receiver.stop();
  await db.close();
});

const deps = () => ({ store: db.store, clock });
const subscribe = (path: string) =>
  createSubscription({ store: db.store, policy }, { url: receiver.url(path), events: ["order.confirmed"] });

/** Sends one order.confirmed to every subscription through the consumer, as the broker would. */
async function deliverConfirmed(orderId: string): Promise<{ event: Envelope; deliveries: Envelope[] }> {
  const transport = recordingTransport();
  const consumer = webhooksConsumer({ store: db.store, transport, ...policy, clock });
  const event = createEnvelope({
    type: "OrderConfirmed",
    source: `edgewise://actor/order/${orderId}`,
    data: {
      orderId,
      version: 3,
      customerId: "c1",
      items: [{ sku: "sku-1", quantity: 1, unitPriceCents: 100 }],
      totalCents: 100,
    },
    target: "webhooks/outbound",
  });
  await consumer.receive(event);
  for (const delivery of transport.sent) await consumer.receive(delivery).catch(() => undefined);
  return { event, deliveries: transport.sent };
}

/** Whether `secret` verifies the last request the receiver got at `path`, as an integrator checks it. */
function verifies(secret: string, path: string): boolean {
  const hit = receiver.at(path).at(-1);
  if (!hit) throw new Error(`nothing arrived at ${path}`);
  try {
    new Webhook(secret).verify(hit.body, hit.headers);
    return true;
  } catch {
    return false;
  }
}

describe("secret rotation", () => {
  // Deliveries are stamped by this clock and verified against the real one: each test starts at the real time.
  beforeEach(() => clock.set(Date.now()));

  test("both secrets sign during the overlap, then only the new one; the new secret is shown once", async () => {
    const created = await subscribe("/rotate");
    // Two minutes, so that deliveries stamped after it are still within standardwebhooks' 5-minute tolerance.
    const rotated = await rotateSubscriptionSecret(deps(), created.id, { overlapSeconds: 120 });
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);
    expect(rotated.previousSecretExpiresAt).toBe(new Date(clock.now() + 120_000).toISOString());

    await deliverConfirmed("o-rot-1");
    expect(verifies(created.secret, "/rotate")).toBe(true);
    expect(verifies(rotated.secret, "/rotate")).toBe(true);
    expect(receiver.at("/rotate").at(-1)?.headers["webhook-signature"]?.split(" ")).toHaveLength(2);

    // The view never shows a secret, and says until when the old one signs.
    const view = await showSubscription(deps(), created.id);
    expect(JSON.stringify(view)).not.toContain("whsec_");
    expect(view.previousSecretExpiresAt).toBe(rotated.previousSecretExpiresAt);

    clock.advance(120_000);
    await deliverConfirmed("o-rot-2");
    expect(verifies(rotated.secret, "/rotate")).toBe(true);
    expect(verifies(created.secret, "/rotate")).toBe(false);
    expect((await showSubscription(deps(), created.id)).previousSecretExpiresAt).toBeNull();
  });

  test("the default overlap is a day; a second rotation drops the original secret at once", async () => {
    const created = await subscribe("/rotate-twice");
    const first = await rotateSubscriptionSecret(deps(), created.id, {});
    expect(first.previousSecretExpiresAt).toBe(new Date(clock.now() + 86_400_000).toISOString());
    const second = await rotateSubscriptionSecret(deps(), created.id, undefined);
    await deliverConfirmed("o-rot-3");
    expect(verifies(second.secret, "/rotate-twice")).toBe(true);
    expect(verifies(first.secret, "/rotate-twice")).toBe(true);
    expect(verifies(created.secret, "/rotate-twice")).toBe(false);
  });

  test("overlapSeconds 0 retires the old secret at once", async () => {
    const created = await subscribe("/rotate-now");
    const rotated = await rotateSubscriptionSecret(deps(), created.id, { overlapSeconds: 0 });
    expect(rotated.previousSecretExpiresAt).toBeNull();
    await deliverConfirmed("o-rot-4");
    expect(verifies(rotated.secret, "/rotate-now")).toBe(true);
    expect(verifies(created.secret, "/rotate-now")).toBe(false);
  });

  test("bad input and unknown or deleted subscriptions change nothing", async () => {
    const created = await subscribe("/rotate-refused");
    for (const body of [
      { overlapSeconds: -1 },
      { overlapSeconds: 1.5 },
      { overlapSeconds: 8 * 86_400 },
      { x: 1 },
    ]) {
      expect((await edgewiseRejection(rotateSubscriptionSecret(deps(), created.id, body))).code).toBe(
        "request.invalid",
      );
    }
    await deleteSubscription(db.store, created.id);
    expect((await edgewiseRejection(rotateSubscriptionSecret(deps(), created.id, {}))).code).toBe(
      "not_found",
    );
    expect(
      (await edgewiseRejection(rotateSubscriptionSecret(deps(), "whsub_0000000000000000", {}))).code,
    ).toBe("not_found");
    expect((await edgewiseRejection(rotateSubscriptionSecret(deps(), "not-an-id", {}))).code).toBe(
      "not_found",
    );
    expect((await db.store.getSubscription(created.id))?.secret).toBe(created.secret);
  });
});

describe("listings", () => {
  test("subscriptions page oldest first, without secrets or the deleted, each exactly once", async () => {
    const { store, close } = await testStore("management_list");
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push(
          (
            await createSubscription(
              { store, policy },
              { url: `http://127.0.0.1:9/${i}`, events: ["order.confirmed"] },
            )
          ).id,
        );
      }
      await deleteSubscription(store, ids[2] as string);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await listSubscriptionViews(
          { store, clock },
          { limit: "2", ...(cursor ? { cursor } : {}) },
        );
        expect(JSON.stringify(page)).not.toContain("whsec_");
        seen.push(...page.items.map((item) => item.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor && pages < 10);
      expect(seen).toEqual(ids.filter((_, i) => i !== 2));
      expect(pages).toBe(2);
      expect(
        (await edgewiseRejection(listSubscriptionViews({ store, clock }, { cursor: "forged" }))).code,
      ).toBe("request.invalid");
      expect((await edgewiseRejection(showSubscription({ store, clock }, ids[2] as string))).code).toBe(
        "not_found",
      );
    } finally {
      await close();
    }
  });

  test("attempts page newest first, filter by event, and stay readable after the subscription is deleted", async () => {
    const failing = await subscribe("/failing");
    const sent: Array<{ event: Envelope; deliveries: Envelope[] }> = [];
    for (let i = 0; i < 3; i++) sent.push(await deliverConfirmed(`o-att-${i}`));
    const events = sent.map((one) => one.event);
    const first = events[0] as Envelope;
    // The broker's retry of the first event's delivery to this subscription.
    const retry = sent[0]?.deliveries.find((delivery) => delivery.target === `webhooks/${failing.id}`);
    const consumer = webhooksConsumer({ store: db.store, transport: recordingTransport(), ...policy, clock });
    await consumer.receive(retry as Envelope).catch(() => undefined);

    const all = await listDeliveryAttempts(deps(), failing.id, { limit: "100" });
    expect(all.items.map((item) => [item.eventId, item.attempt])).toEqual([
      [first.id, 2],
      [(events[2] as Envelope).id, 1],
      [(events[1] as Envelope).id, 1],
      [first.id, 1],
    ]);
    expect(all.items[0]).toMatchObject({ outcome: "failed", statusCode: 500, error: "answered 500" });
    expect(all.nextCursor).toBeNull();

    const firstPage = await listDeliveryAttempts(deps(), failing.id, { limit: "3" });
    const rest = await listDeliveryAttempts(deps(), failing.id, { cursor: firstPage.nextCursor ?? "" });
    expect([...firstPage.items, ...rest.items]).toEqual(all.items);

    const ofFirst = await listDeliveryAttempts(deps(), failing.id, { eventId: first.id });
    expect(ofFirst.items.map((item) => item.attempt)).toEqual([2, 1]);

    await deleteSubscription(db.store, failing.id);
    expect((await listDeliveryAttempts(deps(), failing.id, {})).items).toHaveLength(4);
    expect((await edgewiseRejection(listDeliveryAttempts(deps(), "whsub_0000000000000000", {}))).code).toBe(
      "not_found",
    );
  });
});

test("a table made before rotation existed gains its columns, and its subscriptions rotate", async () => {
  const { sql, close } = await testStore("management_upgrade");
  try {
    // The shape of webhook_subscriptions before this release (which left no schema marker).
    await sql.unsafe(`
      DELETE FROM edgewise_schema WHERE component = 'webhooks';
      DROP TABLE webhook_subscriptions;
      CREATE TABLE webhook_subscriptions (
        id text PRIMARY KEY, url text NOT NULL, events text NOT NULL,
        secret text NOT NULL CHECK (secret LIKE 'whsec\\_%'),
        created_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
      INSERT INTO webhook_subscriptions (id, url, events, secret)
        VALUES ('whsub_old0000000000000', 'http://127.0.0.1:9/old', 'order.confirmed', 'whsec_c2VjcmV0');`);
    const store = new PostgresWebhookStore(sql);
    await store.migrate();
    const old = await store.getSubscription("whsub_old0000000000000");
    expect(old).toMatchObject({
      secret: "whsec_c2VjcmV0",
      previousSecret: null,
      previousSecretExpiresAt: null,
    });
    const rotated = await rotateSubscriptionSecret({ store, clock }, "whsub_old0000000000000", {});
    expect((await store.getSubscription("whsub_old0000000000000"))?.previousSecret).toBe("whsec_c2VjcmV0");
    expect(rotated.secret).not.toBe("whsec_c2VjcmV0");
  } finally {
    await close();
  }
});
