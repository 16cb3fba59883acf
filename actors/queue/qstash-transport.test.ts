// The QStash transport against the real broker: QSTASH_DEV in the environment does not redirect what it publishes.
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  QstashChatRatelimitError,
  QstashDailyRatelimitError,
  QstashError,
  QstashRatelimitError,
} from "@upstash/qstash";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { qstashTransportFromEnv } from "../hosts/cloudflare/queue.ts";
import { edgewiseRejection } from "../../test/support/errors.ts";
import {
  call,
  dropSchema,
  startReceiver,
  startTestBroker,
  uniqueSchema,
  waitFor,
} from "../../test/broker/helpers.ts";
import { batchBodyBytes, batches, QStashTransport } from "./qstash-transport.ts";

const schema = uniqueSchema("transport_dev");
let broker: Broker;
const receiver = startReceiver();
/** Stands where the SDK's dev mode would publish instead (127.0.0.1:QSTASH_DEV_PORT), and records what arrives. */
const decoy: string[] = [];
const decoyServer = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(request) {
    decoy.push(`${request.method} ${new URL(request.url).pathname}`);
    return Response.json({ messageId: "msg_decoy" });
  },
});

beforeAll(async () => {
  broker = await startTestBroker(schema);
});
afterAll(async () => {
  await broker.stop();
  receiver.stop();
  decoyServer.stop(true);
  await dropSchema(schema);
});

test("with QSTASH_DEV=1 in the environment, messages still go to the configured broker with its token", async () => {
  // Left to itself, the SDK's Client follows QSTASH_DEV: it ignores its URL and token and publishes to `qstash dev`
  // on QSTASH_DEV_PORT, downloading that binary first when nothing listens there.
  const saved = { dev: process.env.QSTASH_DEV, port: process.env.QSTASH_DEV_PORT };
  process.env.QSTASH_DEV = "1";
  process.env.QSTASH_DEV_PORT = String(decoyServer.port);
  try {
    const transport = new QStashTransport({
      baseUrl: broker.url,
      token: broker.token,
      deliveryUrl: () => receiver.url("/deliver"),
    });
    const envelope = createEnvelope({
      type: "Ping",
      source: "edgewise://test",
      target: "counter/dev",
      data: {},
    });
    await transport.send([envelope]);
    await waitFor(() => receiver.deliveries.length === 1, 5_000, "the delivery");
    expect(JSON.parse(receiver.deliveries[0]?.body ?? "{}")).toMatchObject({ id: envelope.id });
    expect(decoy).toEqual([]);
  } finally {
    for (const [name, value] of [
      ["QSTASH_DEV", saved.dev],
      ["QSTASH_DEV_PORT", saved.port],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});

test("large messages go out in batches the broker accepts: by count and by size, a large one alone", async () => {
  const item = (chars: number) => ({ body: "x".repeat(chars) });
  const sizes = (runs: Array<Array<{ body: string }>>) => runs.map((run) => run.length);
  expect(
    sizes(
      batches(
        Array.from({ length: 250 }, () => item(10)),
        100,
        batchBodyBytes,
      ),
    ),
  ).toEqual([100, 100, 50]);
  // 900 KB each, counted at 3 bytes a character (2.7 MB): one per 4 MiB request.
  expect(
    sizes(
      batches(
        Array.from({ length: 11 }, () => item(900_000)),
        100,
        batchBodyBytes,
      ),
    ),
  ).toEqual(Array.from({ length: 11 }, () => 1));
  expect(sizes(batches([item(10), item(2_000_000), item(10)], 100, batchBodyBytes))).toEqual([1, 1, 1]);

  // Eleven messages of about 900 KB: one /v2/batch request would be over the broker's 10 MiB, refused every time.
  const transport = new QStashTransport({
    baseUrl: broker.url,
    token: broker.token,
    deliveryUrl: () => receiver.url("/large"),
  });
  const before = receiver.deliveries.length;
  await transport.send(
    Array.from({ length: 11 }, (_, i) =>
      createEnvelope({
        type: "Big",
        source: "edgewise://test",
        target: `counter/big-${i}`,
        data: { pad: "y".repeat(900_000) },
      }),
    ),
  );
  await waitFor(() => receiver.deliveries.length - before === 11, 15_000, "the eleven large deliveries");
}, 30_000);

test("on Workers, EDGEWISE_DELIVERY_RETRIES sets the broker's retries, as on a node; a bad value is config.invalid", async () => {
  const failing = startReceiver(() => new Response("down", { status: 500 }));
  try {
    const transport = qstashTransportFromEnv({
      QSTASH_URL: broker.url,
      QSTASH_TOKEN: broker.token,
      PUBLIC_URL: failing.url(""),
      EDGEWISE_DELIVERY_RETRIES: "1",
    });
    const envelope = createEnvelope({
      type: "Ping",
      source: "edgewise://test",
      target: "counter/retries",
      data: {},
    });
    await transport?.send([envelope]);
    // One delivery and one retry, then the dead-letter queue (with the default of 3 there would be four).
    const dead = async () => {
      const { body } = await call(broker, "/v2/dlq");
      return (body as { messages: Array<{ url: string }> }).messages.filter((m) => m.url.includes("retries"));
    };
    await waitFor(async () => (await dead()).length === 1, 10_000, "the dead letter");
    expect(failing.deliveries.length).toBe(2);
  } finally {
    failing.stop();
  }
  const error = await edgewiseRejection(
    (async () =>
      qstashTransportFromEnv({
        QSTASH_URL: broker.url,
        QSTASH_TOKEN: broker.token,
        PUBLIC_URL: "https://edge.example",
        EDGEWISE_DELIVERY_RETRIES: "lots",
      }))(),
  );
  expect(error.code).toBe("config.invalid");
  expect(error.issues?.[0]?.path).toBe("EDGEWISE_DELIVERY_RETRIES");
});

test("the same message from two deployments on one broker reaches both; the same deployment's repeat is dropped", async () => {
  // Ids are deterministic where they must be (an order's from its caller and Idempotency-Key, billing's replies), so
  // staging and production publishing to one QStash account can publish the same id for the same target. Before,
  // the second deployment's message was taken for a repeat of the first's and dropped.
  const production = startReceiver();
  try {
    const transport = (deliverTo: string) =>
      new QStashTransport({ baseUrl: broker.url, token: broker.token, deliveryUrl: () => deliverTo });
    const staging = transport(receiver.url("/two-deployments"));
    const live = transport(production.url("/two-deployments"));
    const envelope = createEnvelope({
      type: "PaymentCaptured",
      source: "edgewise://billing",
      target: "order/o-42",
      data: {},
    });
    await staging.send([envelope]);
    await live.send([envelope]);
    await staging.send([envelope]); // a relay retry of a batch the broker already took
    const arrived = (deliveries: typeof receiver.deliveries) =>
      deliveries.filter((delivery) => delivery.path === "/two-deployments").map((d) => JSON.parse(d.body).id);
    await waitFor(() => arrived(production.deliveries).length === 1, 5_000, "production's delivery");
    await waitFor(() => arrived(receiver.deliveries).length === 1, 5_000, "staging's delivery");
    await Bun.sleep(300); // a repeat that slipped through would be delivered by now
    expect(arrived(receiver.deliveries)).toEqual([envelope.id]);
    expect(arrived(production.deliveries)).toEqual([envelope.id]);
  } finally {
    production.stop();
  }
});

test("a broker that is down or refuses fails the send, and nothing is written to the console", async () => {
  // The relay reports a failed pass on the node's JSON log. The SDK's own HTTP client also printed a line of plain
  // text to stderr for each (`[Upstash QStash] POST … failed after 1 attempt: …`), among the JSON lines.
  const refusing = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => new Response("nope", { status: 401 }),
  });
  const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const closedUrl = `http://127.0.0.1:${closed.port}`;
  closed.stop(true);
  const printed: unknown[][] = [];
  const saved = { error: console.error, warn: console.warn, log: console.log };
  console.error = (...args: unknown[]) => void printed.push(args);
  console.warn = (...args: unknown[]) => void printed.push(args);
  console.log = (...args: unknown[]) => void printed.push(args);
  try {
    for (const baseUrl of [`http://127.0.0.1:${refusing.port}`, closedUrl]) {
      const transport = new QStashTransport({
        baseUrl,
        token: "t",
        deliveryUrl: () => receiver.url("/down"),
      });
      const envelope = createEnvelope({
        type: "Ping",
        source: "edgewise://test",
        target: "counter/down",
        data: {},
      });
      expect(
        await transport.send([envelope]).then(
          () => "sent",
          () => "failed",
        ),
      ).toBe("failed");
    }
  } finally {
    Object.assign(console, saved);
    refusing.stop(true);
  }
  expect(printed).toEqual([]);
});

test("a 429 is the SDK's rate-limit error for the limit it names, and the transport says how long it asked to wait", async () => {
  // What Upstash answers when a limit is spent (its docs, "API Rate Limit Response"): the reset is a unix timestamp.
  let headers: Record<string, string> = {};
  const limiting = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => new Response("slow down", { status: 429, headers }),
  });
  const transport = new QStashTransport({
    baseUrl: `http://127.0.0.1:${limiting.port}`,
    token: "t",
    deliveryUrl: () => receiver.url("/limited"),
  });
  const envelope = createEnvelope({ type: "Ping", source: "edgewise://test", target: "counter/l", data: {} });
  const refusal = async (answer: Record<string, string>) => {
    headers = answer;
    const error: unknown = await transport.send([envelope]).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    return { error, waitMs: transport.retryAfterMs(error) };
  };
  const inSeconds = (seconds: number) => String(Math.floor(Date.now() / 1000) + seconds);
  try {
    const daily = await refusal({
      "RateLimit-Limit": "1000",
      "RateLimit-Remaining": "0",
      "RateLimit-Reset": inSeconds(3_600),
    });
    expect(daily.error).toBeInstanceOf(QstashDailyRatelimitError);
    expect(daily.error).toMatchObject({ status: 429, limit: "1000", remaining: "0" });
    expect(daily.waitMs).toBeGreaterThan(3_590_000);
    expect(daily.waitMs).toBeLessThanOrEqual(3_600_000);

    // The reset is a whole second: taken early in a second, so that the round trip cannot bring the wait down to
    // 1 s (from 950 ms into a second, 2 s on is 1,050 ms away, and a 50 ms call left it at 1,000: not above 1 s).
    if (Date.now() % 1_000 > 500) await Bun.sleep(1_000 - (Date.now() % 1_000));
    const burst = await refusal({
      "Burst-RateLimit-Limit": "100",
      "Burst-RateLimit-Remaining": "0",
      "Burst-RateLimit-Reset": inSeconds(2),
    });
    expect(burst.error).toBeInstanceOf(QstashRatelimitError);
    expect(burst.error).not.toBeInstanceOf(QstashDailyRatelimitError);
    expect(burst.error).toMatchObject({ status: 429, limit: "100" });
    expect(burst.waitMs).toBeGreaterThan(1_000);
    expect(burst.waitMs).toBeLessThanOrEqual(2_000);

    const chat = await refusal({
      "x-ratelimit-limit-requests": "10",
      "x-ratelimit-reset-requests": inSeconds(60),
    });
    expect(chat.error).toBeInstanceOf(QstashChatRatelimitError);
    expect(chat.waitMs).toBeGreaterThan(59_000);

    // No reset header but a Retry-After (a proxy in front): its wait. Neither: a rate limit with no known end.
    const proxied = await refusal({ "Retry-After": "30" });
    expect(proxied.error).toBeInstanceOf(QstashRatelimitError);
    expect(proxied.waitMs).toBeGreaterThan(29_000);
    expect(proxied.waitMs).toBeLessThanOrEqual(31_000);
    const bare = await refusal({});
    expect(bare.error).toBeInstanceOf(QstashRatelimitError);
    expect(bare.waitMs).toBeUndefined();
    // Any other refusal is no rate limit.
    expect(transport.retryAfterMs(new QstashError("nope", 401))).toBeUndefined();
  } finally {
    limiting.stop(true);
  }
});
