// The Postgres webhook store: subscriptions with event filters and soft delete, the attempts log, inbound ids.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { PostgresWebhookStore } from "./postgres-store.ts";
import type { SubscriptionRecorder } from "./store.ts";
import { generateSecret } from "./secret.ts";
import { testStore } from "./test-support.ts";

let db: Awaited<ReturnType<typeof testStore>>;
let store: PostgresWebhookStore;

beforeAll(async () => {
  db = await testStore("store");
  store = db.store;
});
afterAll(() => db.close());

const newSubscription = (id: string, events: string[]) => ({
  id,
  url: `https://hooks.example.com/${id}`,
  events,
  secret: generateSecret(),
});

describe("PostgresWebhookStore", () => {
  test("migrate is idempotent and safe concurrently", async () => {
    await Promise.all([store.migrate(), store.migrate()]);
  });

  test("subscriptions: create, filter by event, soft delete", async () => {
    const a = await store.createSubscription(newSubscription("whsub_a000000000000000", ["order.confirmed"]));
    await store.createSubscription(
      newSubscription("whsub_b000000000000000", ["order.rejected", "order.cancelled"]),
    );
    await store.createSubscription(
      newSubscription("whsub_c000000000000000", ["order.confirmed", "order.cancelled"]),
    );
    expect(a).toMatchObject({ id: "whsub_a000000000000000", events: ["order.confirmed"], deletedAt: null });
    expect(a.createdAt).toBeInstanceOf(Date);

    const ids = async (event?: string) =>
      (await store.listSubscriptions(event === undefined ? {} : { event })).map((s) => s.id.slice(6, 7));
    expect(await ids()).toEqual(["a", "b", "c"]);
    expect(await ids("order.confirmed")).toEqual(["a", "c"]);
    expect(await ids("order.cancelled")).toEqual(["b", "c"]);
    expect(await ids("order")).toEqual([]);

    expect(await store.deleteSubscription("whsub_c000000000000000")).toBe(true);
    expect(await store.deleteSubscription("whsub_c000000000000000")).toBe(true);
    expect(await store.deleteSubscription("whsub_x000000000000000")).toBe(false);
    expect(await ids("order.confirmed")).toEqual(["a"]);
    expect((await store.getSubscription("whsub_c000000000000000"))?.deletedAt).toBeInstanceOf(Date);
    expect(await store.getSubscription("whsub_x000000000000000")).toBeUndefined();
  });

  test("a duplicate id is a conflict; a secret must be whsec_", async () => {
    const duplicate = await store
      .createSubscription(newSubscription("whsub_a000000000000000", ["order.confirmed"]))
      .catch((error: unknown) => error);
    expect(duplicate).toBeInstanceOf(EdgewiseError);
    expect((duplicate as EdgewiseError).code).toBe("conflict");
    const plain = { ...newSubscription("whsub_d000000000000000", ["order.confirmed"]), secret: "hunter2" };
    await expect(store.createSubscription(plain)).rejects.toThrow();
  });

  test("a recorder writes on the creation's transaction: kept with it; if it throws, no subscription (503)", async () => {
    // What the gateway wires to the activity log's admin.webhook_subscription_created, on the same database.
    await db.sql`CREATE TABLE subscription_records (id text NOT NULL, secret text NOT NULL)`;
    const records = async () =>
      (await db.sql`SELECT id, secret FROM subscription_records`).map((row) => ({ ...row }));
    const record: SubscriptionRecorder = async (tx, subscription) =>
      tx`INSERT INTO subscription_records VALUES (${subscription.id}, ${subscription.secret})`;
    const failing: SubscriptionRecorder = async (tx, subscription) => {
      // Written, then the record fails: the row it wrote goes with the subscription.
      await record(tx, subscription);
      throw new Error("the record's write failed");
    };

    const lost = newSubscription("whsub_r100000000000000", ["order.confirmed"]);
    await expect(store.createSubscription(lost, failing)).rejects.toMatchObject({ code: "unavailable" });
    expect(await store.getSubscription(lost.id)).toBeUndefined();
    expect(await records()).toEqual([]);

    // The recorder sees the subscription as written.
    const kept = newSubscription("whsub_r200000000000000", ["order.confirmed"]);
    await store.createSubscription(kept, record);
    expect(await records()).toEqual([{ id: kept.id, secret: kept.secret }]);
    expect((await store.getSubscription(kept.id))?.deletedAt).toBeNull();
  });

  test("without a recorder too, a subscription whose caller stopped waiting before COMMIT is rolled back", async () => {
    // Another session holds the table past the caller's deadline; the creation goes on once it lets go.
    let taken!: () => void;
    const held = new Promise<void>((resolve) => {
      taken = resolve;
    });
    const released = db.sql.begin(async (tx) => {
      await tx`LOCK TABLE webhook_subscriptions IN SHARE MODE`;
      taken();
      await Bun.sleep(600);
    });
    await held;
    const late = newSubscription("whsub_t100000000000000", ["order.confirmed"]);
    const error = await store.createSubscription(late, undefined, AbortSignal.timeout(150)).catch((e) => e);
    await released;
    expect(error).toMatchObject({ code: "timeout" });
    expect(await store.getSubscription(late.id)).toBeUndefined();
    // Within its deadline, the same subscription is made.
    await store.createSubscription(late, undefined, AbortSignal.timeout(5_000));
    expect((await store.getSubscription(late.id))?.deletedAt).toBeNull();
  });

  test("the attempts log numbers attempts per (subscription, event)", async () => {
    const sub = "whsub_a000000000000000";
    const base = { subscriptionId: sub, eventId: "evt_1", error: null };
    expect(
      await store.recordAttempt({ ...base, statusCode: 500, outcome: "failed", error: "answered 500" }),
    ).toBe(1);
    expect(await store.wasDelivered(sub, "evt_1")).toBe(false);
    expect(await store.recordAttempt({ ...base, statusCode: 200, outcome: "delivered" })).toBe(2);
    expect(
      await store.recordAttempt({ ...base, eventId: "evt_2", statusCode: null, outcome: "refused" }),
    ).toBe(1);
    expect(await store.wasDelivered(sub, "evt_1")).toBe(true);
    expect(await store.wasDelivered(sub, "evt_2")).toBe(false);
    const attempts = await store.listAttempts(sub, "evt_1");
    expect(
      attempts.map(({ attempt, statusCode, outcome, error }) => ({ attempt, statusCode, outcome, error })),
    ).toEqual([
      { attempt: 1, statusCode: 500, outcome: "failed", error: "answered 500" },
      { attempt: 2, statusCode: 200, outcome: "delivered", error: null },
    ]);
    expect(await store.listAttempts(sub)).toHaveLength(3);
  });

  test("inbound ids: the first record wins, per source; old ones can be pruned", async () => {
    expect(await store.hasSeenInbound("supplier", "msg_1")).toBe(false);
    expect(await store.recordInbound("supplier", "msg_1")).toBe(true);
    expect(await store.recordInbound("supplier", "msg_1")).toBe(false);
    expect(await store.recordInbound("other", "msg_1")).toBe(true);
    expect(await store.hasSeenInbound("supplier", "msg_1")).toBe(true);
    const racing = await Promise.all([1, 2, 3].map(() => store.recordInbound("supplier", "msg_2")));
    expect(racing.filter(Boolean)).toHaveLength(1);
    expect(await store.pruneInbound(new Date(Date.now() - 60_000))).toBe(0);
    expect(await store.pruneInbound(new Date(Date.now() + 60_000))).toBe(3);
    expect(await store.hasSeenInbound("supplier", "msg_1")).toBe(false);
  });
});
