// How delivery treats a receiver's answers: which count against its host's breaker, and 410 Gone.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { systemClock } from "../../../shared/clock/index.ts";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import { prefixedId } from "../../../shared/ids/index.ts";
import { deliver } from "./delivery.ts";
import { postWithNodeHttp } from "./node-post.ts";
import { generateSecret } from "./secret.ts";
import type { AttemptRecord, WebhookSubscription } from "./store.ts";
import { startHookReceiver } from "./test-support.ts";

let receiver: ReturnType<typeof startHookReceiver>;
beforeAll(() => {
  receiver = startHookReceiver((hit) => {
    const status = Number(hit.path.slice(1));
    return new Response(null, {
      status,
      headers: status === 302 ? { location: "http://127.0.0.1:1/elsewhere" } : {},
    });
  });
});
afterAll(() => receiver.stop());

/** One subscription held in memory, and a guard that records whether the POST failed inside it. */
function setup(path: string) {
  const subscription: WebhookSubscription = {
    id: prefixedId("whsub"),
    url: receiver.url(path),
    events: ["order.confirmed"],
    secret: generateSecret(),
    createdAt: new Date(),
    deletedAt: null,
  };
  const attempts: AttemptRecord[] = [];
  const store = {
    getSubscription: async () => subscription,
    wasDelivered: async () => false,
    recordAttempt: async (attempt: AttemptRecord) => attempts.push(attempt),
    deleteSubscription: async () => {
      subscription.deletedAt ??= new Date();
      return true;
    },
  };
  const guarded: Array<"answered" | "failed"> = [];
  const guard = async <T>(_host: string, post: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    try {
      const result = await post(new AbortController().signal);
      guarded.push("answered");
      return result;
    } catch (error) {
      guarded.push("failed");
      throw error;
    }
  };
  const event = createEnvelope({
    type: "OrderConfirmed",
    source: "edgewise://actor/order/o-1",
    data: { orderId: "o-1", version: 3, customerId: "c1", items: [], totalCents: 0 },
  });
  const run = () =>
    deliver(
      {
        store,
        policy: { resolve: async () => [], allowPrivate: true },
        clock: systemClock,
        post: postWithNodeHttp,
        guard,
      },
      { subscriptionId: subscription.id, event },
    ).catch((error: unknown) => error);
  return { subscription, attempts, guarded, run };
}

describe("the host's breaker counts only answers that say the host is in trouble", () => {
  test.each([404, 302, 400])(
    "%i fails the delivery (retried) but does not count against the host",
    async (status) => {
      const { guarded, run } = setup(`/${status}`);
      expect(await run()).toMatchObject({ code: "webhooks.delivery_failed", meta: { statusCode: status } });
      expect(guarded).toEqual(["answered"]);
    },
  );

  test.each([500, 503, 429, 408])("%i fails the delivery and counts against the host", async (status) => {
    const { guarded, run } = setup(`/${status}`);
    expect(await run()).toMatchObject({ code: "webhooks.delivery_failed", meta: { statusCode: status } });
    expect(guarded).toEqual(["failed"]);
  });
});

describe("410 Gone: the receiver wants no more webhooks (Standard Webhooks)", () => {
  test("the subscription is disabled, the delivery ends without a retry, and the attempt is logged", async () => {
    const { subscription, attempts, guarded, run } = setup("/410");
    expect(await run()).toEqual({
      duplicate: false,
      reply: { status: 410, disabled: "the receiver answered 410 Gone" },
    });
    expect(subscription.deletedAt).toBeInstanceOf(Date);
    expect(guarded).toEqual(["answered"]);
    expect(attempts.map(({ outcome, statusCode, error }) => [outcome, statusCode, error])).toEqual([
      ["failed", 410, "answered 410 Gone: subscription disabled"],
    ]);
    // Its next delivery is a no-op, like any deleted subscription's.
    expect(await run()).toEqual({ duplicate: false, reply: { skipped: "subscription deleted" } });
    expect(receiver.at("/410")).toHaveLength(1);
  });
});
