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
  // `/<status>`, or `/<status>/<Retry-After value, URI-encoded>`.
  receiver = startHookReceiver((hit) => {
    const [status, retryAfter] = hit.path.slice(1).split("/");
    return new Response(null, {
      status: Number(status),
      headers: {
        ...(status === "302" ? { location: "http://127.0.0.1:1/elsewhere" } : {}),
        ...(retryAfter ? { "retry-after": decodeURIComponent(retryAfter) } : {}),
      },
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
    previousSecret: null,
    previousSecretExpiresAt: null,
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

describe("a receiver's Retry-After is passed on, so the broker comes back when it was asked to", () => {
  test("delta-seconds and an HTTP date; capped at a day; an unreadable one is left out", async () => {
    const inNinetySeconds = new Date(Date.now() + 90_000).toUTCString();
    const cases: Array<[string, number | undefined]> = [
      ["/429/30", 30],
      [`/503/${encodeURIComponent(inNinetySeconds)}`, 90],
      ["/429/999999", 86_400],
      ["/503/soon", undefined],
      ["/503", undefined],
    ];
    for (const [path, seconds] of cases) {
      const error = (await setup(path).run()) as { code: string; meta: Record<string, unknown> };
      expect(error.code).toBe("webhooks.delivery_failed");
      if (seconds === undefined) expect(error.meta).not.toHaveProperty("retryAfterSeconds");
      // An HTTP date has a resolution of one second: 89 to 90 s ahead.
      else expect(Math.abs((error.meta.retryAfterSeconds as number) - seconds)).toBeLessThanOrEqual(1);
    }
  });
});
