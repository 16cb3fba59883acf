// Retries: QStash backoff with growing gaps, Retry-After, 489 non-retryable, dead letters and their replay.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@upstash/qstash";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { backoffMs, retryAfterMs } from "../../actors/queue/retry-policy.ts";
import { dropSchema, startReceiver, startTestBroker, uniqueSchema, waitFor } from "./helpers.ts";

const schema = uniqueSchema("retries");
const SCALE = 0.001; // backoff: 12 ms, 148 ms, 1808 ms
let broker: Broker;
let client: Client;
let healed = false;
const destination = startReceiver((d, nth) => {
  if (d.path === "/always-500") return new Response("boom", { status: 500 });
  if (d.path === "/retry-after" && nth === 1) {
    return new Response("busy", { status: 503, headers: { "Retry-After": "100" } }); // 100 s -> 100 ms
  }
  if (d.path === "/retry-now" && nth <= 2) {
    return new Response("busy", { status: 503, headers: { "Retry-After": "0" } });
  }
  if (d.path.startsWith("/junk-retry-after?") && nth <= 2) {
    // The second failure says when to retry in a way no HTTP parser reads: the backoff applies.
    const value = new URL(d.url).searchParams.get("v") ?? "";
    return new Response("busy", { status: 503, headers: nth === 2 ? { "Retry-After": value } : {} });
  }
  if (d.path === "/poison") {
    return new Response("bad payload", { status: 489, headers: { "Upstash-NonRetryable-Error": "true" } });
  }
  if (d.path === "/489-plain") return new Response("no header", { status: 489 });
  if (d.path === "/flaky" && !healed) return new Response("down", { status: 500 });
  return new Response("ok");
});

const dlqFor = async (messageId: string) =>
  (await client.dlq.listMessages({ filter: { messageId } })).messages.find((m) => m.messageId === messageId);

beforeAll(async () => {
  broker = await startTestBroker(schema, { timeScale: SCALE });
  client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
});

afterAll(async () => {
  await broker.stop();
  destination.stop();
  await dropSchema(schema);
});

describe("retries", () => {
  test("the backoff is QStash's min(86400, e^(2.5n)) seconds", () => {
    expect(backoffMs(1, 1)).toBe(12_182);
    expect(backoffMs(2, 1)).toBe(148_413);
    expect(backoffMs(3, 1)).toBe(1_808_042);
    expect(backoffMs(5, 1)).toBe(86_400_000);
  });

  test("a 500 is retried `retries` times with growing gaps, then dead-lettered", async () => {
    const { messageId } = await client.publish({
      url: destination.url("/always-500"),
      body: "x",
      retries: 3,
    });
    await waitFor(async () => (await dlqFor(messageId)) !== undefined, 8000, "the DLQ entry");
    const attempts = destination.of(messageId);
    expect(attempts.map((a) => a.retried)).toEqual([0, 1, 2, 3]);
    const gaps = attempts.slice(1).map((a, i) => a.at - (attempts[i]?.at ?? 0));
    expect(gaps[0]).toBeGreaterThanOrEqual(10);
    expect(gaps[1]).toBeGreaterThan(gaps[0] as number);
    expect(gaps[2]).toBeGreaterThan(gaps[1] as number);
    expect(gaps[1]).toBeGreaterThanOrEqual(140);
    expect(gaps[2]).toBeGreaterThanOrEqual(1700);
    const entry = await dlqFor(messageId);
    expect(entry).toMatchObject({ responseStatus: 500, responseBody: "boom", maxRetries: 3 });
    const states: string[] = (await client.logs({ messageIds: [messageId] })).logs
      .map((l) => l.state)
      .reverse();
    expect(states).toEqual([
      "CREATED",
      ...["ACTIVE", "ERROR", "RETRY"],
      ...["ACTIVE", "ERROR", "RETRY"],
      ...["ACTIVE", "ERROR", "RETRY"],
      "ACTIVE",
      "ERROR",
      "FAILED",
    ]);
  });

  test("Retry-After on the response sets the next attempt (scaled)", async () => {
    const { messageId } = await client.publish({
      url: destination.url("/retry-after"),
      body: "x",
      retries: 2,
    });
    await waitFor(() => destination.of(messageId).length === 2, 3000);
    const [first, second] = destination.of(messageId);
    const gap = (second?.at ?? 0) - (first?.at ?? 0);
    expect(gap).toBeGreaterThanOrEqual(95); // Retry-After 100 s, not the 12 s backoff
    expect(gap).toBeLessThan(1000);
  });

  test("Retry-After: 0 retries at once, not at the next poll", async () => {
    const { messageId } = await client.publish({ url: destination.url("/retry-now"), body: "x", retries: 3 });
    await waitFor(() => destination.of(messageId).length === 3, 5000);
    const attempts = destination.of(messageId);
    // Each retry is due the moment its outcome commits; waiting for the 1 s poll fallback would take 2 s (a poll
    // comes 1 s after the last claim). Half of that leaves a loaded machine's stalls most of a second.
    expect((attempts[2]?.at ?? 0) - (attempts[0]?.at ?? 0)).toBeLessThan(1_000);
  });

  test("a Retry-After that is neither seconds nor an HTTP date is ignored, not read as a date in the past", async () => {
    const ids = await Promise.all(
      ["abc 1", "1 2", "-5", "soon"].map(
        async (v) =>
          (
            await client.publish({
              url: destination.url(`/junk-retry-after?v=${encodeURIComponent(v)}`),
              body: "x",
              retries: 3,
            })
          ).messageId,
      ),
    );
    await waitFor(() => ids.every((id) => destination.of(id).length === 3), 5000);
    for (const id of ids) {
      const [, second, third] = destination.of(id);
      // The second retry's backoff (148 ms at this scale), not at once.
      expect((third?.at ?? 0) - (second?.at ?? 0)).toBeGreaterThanOrEqual(130);
    }
  });

  test("Retry-After takes seconds, HTTP dates and durations such as 6m5s; past a day it is capped", () => {
    const now = Date.parse("Sun, 06 Nov 1994 08:49:37 GMT");
    expect(retryAfterMs("10", now)).toBe(10_000);
    expect(retryAfterMs("6m5s", now)).toBe(365_000);
    expect(retryAfterMs("Sun, 06 Nov 1994 08:50:37 GMT", now)).toBe(60_000);
    expect(retryAfterMs("Sunday, 06-Nov-94 08:50:37 GMT", now)).toBe(60_000);
    expect(retryAfterMs("Sun Nov  6 08:50:37 1994", now)).toBe(60_000);
    expect(retryAfterMs("Sun, 06 Nov 1994 08:48:37 GMT", now)).toBe(0);
    expect(retryAfterMs("90000", now)).toBe(86_400_000);
    for (const junk of ["abc 1", "1 2", "-5", "", "1.", "Nov 6"])
      expect(retryAfterMs(junk, now)).toBeUndefined();
  });

  test("489 with Upstash-NonRetryable-Error goes straight to the DLQ", async () => {
    const { messageId } = await client.publish({ url: destination.url("/poison"), body: "x", retries: 3 });
    await waitFor(async () => (await dlqFor(messageId)) !== undefined, 3000, "the DLQ entry");
    await Bun.sleep(100);
    expect(destination.of(messageId)).toHaveLength(1);
    expect(await dlqFor(messageId)).toMatchObject({ responseStatus: 489, responseBody: "bad payload" });
  });

  test("489 without the header is an ordinary failure and is retried", async () => {
    const { messageId } = await client.publish({ url: destination.url("/489-plain"), body: "x", retries: 1 });
    await waitFor(async () => (await dlqFor(messageId)) !== undefined, 3000, "the DLQ entry");
    expect(destination.of(messageId)).toHaveLength(2);
  });

  test("a network error is retried like a failed response", async () => {
    const closed = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
    const url = `http://127.0.0.1:${closed.port}/gone`;
    closed.stop(true);
    const { messageId } = await client.publish({ url, body: "x", retries: 1 });
    await waitFor(async () => (await dlqFor(messageId)) !== undefined, 3000, "the DLQ entry");
    const entry = await dlqFor(messageId);
    expect(entry?.responseStatus).toBeUndefined();
  });

  test("a DLQ retry delivers the message again, once", async () => {
    const { messageId } = await client.publish({ url: destination.url("/flaky"), body: "again", retries: 0 });
    await waitFor(async () => (await dlqFor(messageId)) !== undefined, 3000, "the DLQ entry");
    healed = true;
    const entry = await dlqFor(messageId);
    const { responses } = await client.dlq.retry({ dlqIds: [entry?.dlqId ?? ""] });
    const replayId = responses[0]?.messageId ?? "";
    await waitFor(() => destination.of(replayId).length === 1, 3000, "the replay");
    expect(destination.of(replayId)[0]).toMatchObject({ body: "again", retried: 0 });
    await Bun.sleep(100);
    expect(destination.of(replayId)).toHaveLength(1);
    expect(await dlqFor(messageId)).toBeUndefined();
  });
});
