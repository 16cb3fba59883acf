// The signed delivery endpoint: key rotation, poison deliveries and handler failures (forgeries and replays: test/security/deliveries.test.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { DEV_CURRENT_SIGNING_KEY } from "../../deploy/local/broker/config.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import type { ActorHost } from "../../actors/runtime/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { counter } from "../../test/conformance/fixtures.ts";
import { deliveryRoutes } from "./deliver.ts";

const current = "sig_current_for_tests";
const next = "sig_next_for_tests";
const publicUrl = "http://edge.test";
const host = new LocalActorHost({
  actors: [counter],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-deliver-")), "actors.db")),
});
const app = deliveryRoutes({ actors: host, currentSigningKey: current, nextSigningKey: next, publicUrl });
afterAll(() => host.stop());

const url = (key: string) => `${publicUrl}/_edgewise/deliver/counter/${key}`;
const increment = (key: string, by = 1) =>
  createEnvelope({ type: "Increment", source: "edgewise://test", target: `counter/${key}`, data: { by } });

async function deliver(key: string, body: string, signature?: string) {
  return app.request(url(key), {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...(signature ? { "upstash-signature": signature } : {}) },
  });
}

const sign = (key: string, target: string, body: string) =>
  createSigner(key)(target, new TextEncoder().encode(body));

const inboxOf = (key: string) => host.inspect({ type: "counter", key }).inboxSize;

describe("signed delivery endpoint", () => {
  test("both signing keys are accepted, so keys rotate without downtime", async () => {
    for (const key of [current, next]) {
      const body = JSON.stringify(increment("d2"));
      expect(await (await deliver("d2", body, await sign(key, url("d2"), body))).json()).toEqual({
        duplicate: false,
      });
    }
    expect(host.inspect({ type: "counter", key: "d2" }).state).toMatchObject({ count: 2 });
  });

  test("poison messages get 489 with Upstash-NonRetryable-Error, and commit nothing", async () => {
    const good = increment("d4");
    const bodies: Array<[string, string]> = [
      ["not JSON", "{oops"],
      ["not an envelope", JSON.stringify({ hello: "world" })],
      ["unknown message type", JSON.stringify({ ...good, type: "Explode" })],
      ["fails its schema", JSON.stringify({ ...good, data: { by: "lots" } })],
      ["target differs from the URL", JSON.stringify({ ...good, target: "counter/elsewhere" })],
    ];
    for (const [name, body] of bodies) {
      const response = await deliver("d4", body, await sign(current, url("d4"), body));
      expect({ name, status: response.status }).toEqual({ name, status: 489 });
      expect(response.headers.get("upstash-nonretryable-error")).toBe("true");
    }
    expect(inboxOf("d4")).toBe(0);
  });

  test("a handler failure answers 5xx so the broker retries; nothing commits", async () => {
    const body = JSON.stringify({ ...increment("d5"), type: "FailAfterEffects", data: {} });
    const response = await deliver("d5", body, await sign(current, url("d5"), body));
    expect(response.status).toBe(500);
    expect(response.headers.get("upstash-nonretryable-error")).toBeNull();
    expect(inboxOf("d5")).toBe(0);
  });

  test("state written by newer code (after a rollback) answers 503, so the message waits in the queue", async () => {
    await host.store.storageFor("counter/d7").commit({
      state: { count: 5, ticks: [] },
      version: counter.version + 1,
      outbox: [],
      timersAdded: [],
      timersRemoved: [],
      kv: [],
    });
    const body = JSON.stringify(increment("d7"));
    const response = await deliver("d7", body, await sign(current, url("d7"), body));
    expect(response.status).toBe(503);
    expect(response.headers.get("upstash-nonretryable-error")).toBeNull();
    expect(((await response.json()) as { code: string }).code).toBe("state.newer_than_code");
    expect(inboxOf("d7")).toBe(0);
  });

  test("a failure that asks for a longer wait than the backoff (a webhook receiver's Retry-After) answers it", async () => {
    // The port of one receiving consumer, failing as the webhook consumer does when a receiver says when.
    const failing = (retryAfterSeconds: number) =>
      deliveryRoutes({
        actors: {
          receive: async () => {
            throw new EdgewiseError("webhooks.delivery_failed", "answered 429", {
              status: 502,
              public: true,
              meta: { retryAfterSeconds },
            });
          },
        } as unknown as ActorHost,
        currentSigningKey: current,
        nextSigningKey: next,
        publicUrl,
      });
    const retryAfter = async (seconds: number, retried: number) => {
      const body = JSON.stringify(increment("d8"));
      const response = await failing(seconds).request(url("d8"), {
        method: "POST",
        body,
        headers: {
          "content-type": "application/json",
          "upstash-signature": await sign(current, url("d8"), body),
          "upstash-retried": String(retried),
        },
      });
      expect(response.status).toBe(502);
      return response.headers.get("retry-after");
    };
    // The first retry's backoff is 12 s, the third's 30 min.
    expect(await retryAfter(30, 0)).toBe("30");
    expect(await retryAfter(30, 2)).toBeNull();
    // A shorter wait (a breaker's "retry in 1 s") would spend the retries within seconds: the backoff stays.
    expect(await retryAfter(1, 0)).toBeNull();
    // Without one, the broker's own backoff applies.
    const plain = JSON.stringify({ ...increment("d9"), type: "FailAfterEffects", data: {} });
    const failed = await deliver("d9", plain, await sign(current, url("d9"), plain));
    expect(failed.headers.get("retry-after")).toBeNull();
  });

  test("QSTASH_DEV in the environment does not switch the endpoint to the SDK's public dev keys", async () => {
    // The SDK's Receiver, when QSTASH_DEV is set, ignores the keys it was given and trusts `qstash dev`'s, which
    // anyone can read: a leaked variable would let anyone sign deliveries. The endpoint pins its own keys.
    const before = process.env.QSTASH_DEV;
    process.env.QSTASH_DEV = "1";
    try {
      const pinned = deliveryRoutes({
        actors: host,
        currentSigningKey: current,
        nextSigningKey: next,
        publicUrl,
      });
      const body = JSON.stringify(increment("d6"));
      const send = async (key: string) =>
        pinned.request(url("d6"), {
          method: "POST",
          body,
          headers: {
            "content-type": "application/json",
            "upstash-signature": await sign(key, url("d6"), body),
          },
        });
      expect((await send(DEV_CURRENT_SIGNING_KEY)).status).toBe(401);
      expect(inboxOf("d6")).toBe(0);
      expect((await send(current)).status).toBe(200);
      expect(inboxOf("d6")).toBe(1);
    } finally {
      if (before === undefined) delete process.env.QSTASH_DEV;
      else process.env.QSTASH_DEV = before;
    }
  });
});
