// Publish headers the broker honours: delay, not-before, deduplication, forwarded headers, method, timeout.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@upstash/qstash";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { call, dropSchema, startReceiver, startTestBroker, uniqueSchema, waitFor } from "./helpers.ts";

const schema = uniqueSchema("headers");
let broker: Broker;
let client: Client;
const destination = startReceiver(async (d) => {
  if (d.path.startsWith("/slow")) await Bun.sleep(300);
  return new Response("ok");
});

beforeAll(async () => {
  // timeScale 0.01: a 10 s delay waits 100 ms.
  broker = await startTestBroker(schema, { timeScale: 0.01 });
  client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
});

afterAll(async () => {
  await broker.stop();
  destination.stop();
  await dropSchema(schema);
});

/** Publishes the body "same" to `url` with content-based deduplication and `headers`; the broker's answer. */
async function publishSame(url: string, headers: Record<string, string>) {
  const response = await call(broker, `/v2/publish/${url}`, {
    method: "POST",
    body: "same",
    headers: { "Upstash-Content-Based-Deduplication": "true", ...headers },
  });
  return response.body as { messageId: string; deduplicated?: boolean };
}

describe("publish headers", () => {
  test("Upstash-Delay waits (scaled by timeScale)", async () => {
    const started = performance.now();
    const publishedAt = Date.now();
    const { messageId } = await client.publish({ url: destination.url("/delay"), body: "d", delay: "10s" });
    // Reported as QStash reports a delayed message: the time it may be delivered from, unscaled.
    const { notBefore } = await client.messages.get(messageId);
    expect(notBefore).toBeGreaterThanOrEqual(publishedAt + 10_000);
    expect(notBefore).toBeLessThan(Date.now() + 10_000 + 1);
    await waitFor(() => destination.of(messageId).length === 1);
    const waited = (destination.of(messageId)[0]?.at ?? 0) - started;
    expect(waited).toBeGreaterThanOrEqual(95);
    expect(waited).toBeLessThan(1500);
  });

  test("compound durations (1d10h30m) are read as QStash documents them, for Upstash-Delay and Upstash-Timeout", async () => {
    const sent = await call(broker, `/v2/publish/${destination.url("/compound")}`, {
      method: "POST",
      body: "c",
      headers: { "Upstash-Delay": "1d10h30m", "Upstash-Timeout": "1d1h30m" },
    });
    expect(sent.status).toBe(201);
    const { messageId } = sent.body as { messageId: string };
    const [row] = await broker.sql`
      SELECT due_at - created_at AS delay, timeout_ms FROM qstash_messages WHERE id = ${messageId}`;
    // 34.5 h at timeScale 0.01, and 25.5 h.
    expect(row?.delay).toBe(1_242_000);
    expect(row?.timeout_ms).toBe(91_800_000);
    await client.messages.cancel(messageId);
    for (const bad of ["1d10x", "10h1", "h", "1.5.5s"]) {
      const response = await call(broker, `/v2/publish/${destination.url("/compound")}`, {
        method: "POST",
        body: "c",
        headers: { "Upstash-Delay": bad },
      });
      expect({ bad, status: response.status }).toEqual({ bad, status: 400 });
    }
  });

  test("Upstash-Not-Before waits until the given time (distance scaled by timeScale)", async () => {
    const started = performance.now();
    const notBefore = Math.floor(Date.now() / 1000) + 20; // 20 s away -> about 200 ms at 0.01
    const { messageId } = await client.publish({ url: destination.url("/nb"), body: "n", notBefore });
    expect((await client.messages.get(messageId)).notBefore).toBe(notBefore * 1000);
    await waitFor(() => destination.of(messageId).length === 1);
    const waited = (destination.of(messageId)[0]?.at ?? 0) - started;
    expect(waited).toBeGreaterThanOrEqual(150);
    expect(waited).toBeLessThan(2000);
  });

  test("Upstash-Deduplication-Id: the second publish is accepted with 202 and not delivered", async () => {
    const url = destination.url("/dedup");
    const first = await client.publish({ url, body: "one", deduplicationId: "order-42" });
    const second = await call(broker, `/v2/publish/${url}`, {
      method: "POST",
      body: "two",
      headers: { "Upstash-Deduplication-Id": "order-42" },
    });
    expect(second.status).toBe(202);
    expect(second.body).toMatchObject({ messageId: first.messageId, deduplicated: true });
    await waitFor(() => destination.of(first.messageId).length === 1);
    await Bun.sleep(50);
    expect(destination.deliveries.filter((d) => d.path === "/dedup")).toHaveLength(1);
  });

  test("content-based deduplication hashes destination and body", async () => {
    const url = destination.url("/content");
    const a = await client.publish({ url, body: "same", contentBasedDeduplication: true });
    const b = await client.publish({ url, body: "same", contentBasedDeduplication: true });
    const c = await client.publish({ url, body: "other", contentBasedDeduplication: true });
    const d = await client.publish({
      url: destination.url("/content2"),
      body: "same",
      contentBasedDeduplication: true,
    });
    expect(b.messageId).toBe(a.messageId);
    expect(b.deduplicated).toBe(true);
    expect(new Set([a.messageId, c.messageId, d.messageId]).size).toBe(3);
    await waitFor(() => destination.deliveries.filter((x) => x.path.startsWith("/content")).length === 3);
    await Bun.sleep(50);
    expect(destination.deliveries.filter((x) => x.path.startsWith("/content"))).toHaveLength(3);
  });

  test("content-based deduplication also hashes Content-Type and the forwarded headers, as QStash does", async () => {
    const url = destination.url("/content-headers");
    const publish = (headers: Record<string, string>) => publishSame(url, headers);
    const a = await publish({ "Upstash-Forward-X-Tenant": "a" });
    const b = await publish({ "Upstash-Forward-X-Tenant": "b" });
    const json = await publish({ "Upstash-Forward-X-Tenant": "a", "Content-Type": "application/json" });
    const again = await publish({ "upstash-forward-x-tenant": "a" });
    expect(new Set([a.messageId, b.messageId, json.messageId]).size).toBe(3);
    expect(again).toMatchObject({ messageId: a.messageId, deduplicated: true });
    await waitFor(() => destination.deliveries.filter((d) => d.path === "/content-headers").length === 3);
    const tenants = destination.deliveries
      .filter((d) => d.path === "/content-headers")
      .map((d) => d.headers["x-tenant"]);
    expect(tenants.sort()).toEqual(["a", "a", "b"]);
  });

  test("Upstash-Forward-* headers arrive without the prefix; other headers do not", async () => {
    const url = destination.url("/fwd");
    const sent = await call(broker, `/v2/publish/${url}`, {
      method: "POST",
      body: "<x/>",
      headers: {
        "Content-Type": "application/xml",
        "Upstash-Forward-Authorization": "Bearer downstream",
        "Upstash-Forward-X-Tenant": "acme",
        "Upstash-Forward-Content-Length": "999", // set by the HTTP client, never forwarded
        // Hop-by-hop: for a proxy on the way, never the destination's.
        "Upstash-Forward-TE": "trailers",
        "Upstash-Forward-Trailer": "X-Checksum",
        "Upstash-Forward-Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
        "X-Not-Forwarded": "1",
      },
    });
    const messageId = (sent.body as { messageId: string }).messageId;
    await waitFor(() => destination.of(messageId).length === 1);
    const headers = destination.of(messageId)[0]?.headers ?? {};
    expect(headers["content-type"]).toBe("application/xml");
    expect(headers.authorization).toBe("Bearer downstream");
    expect(headers["x-tenant"]).toBe("acme");
    expect(headers["x-not-forwarded"]).toBeUndefined();
    expect(headers["upstash-forward-x-tenant"]).toBeUndefined();
    expect(headers["content-length"]).toBe("4");
    for (const hopByHop of ["te", "trailer", "proxy-authorization"])
      expect(headers[hopByHop]).toBeUndefined();
    expect(destination.of(messageId)[0]?.body).toBe("<x/>");
  });

  test("a forwarded header named like an Object.prototype member (__proto__, constructor) arrives, and is hashed for deduplication", async () => {
    const url = destination.url("/fwd-proto");
    const publish = (headers: Record<string, string>) => publishSame(url, headers);
    const a = await publish({ "Upstash-Forward-__proto__": "a", "Upstash-Forward-Constructor": "c" });
    const b = await publish({ "Upstash-Forward-__proto__": "b", "Upstash-Forward-Constructor": "c" });
    expect(b.deduplicated).toBeUndefined();
    expect(b.messageId).not.toBe(a.messageId);
    await waitFor(() => destination.deliveries.filter((d) => d.path === "/fwd-proto").length === 2);
    const received = destination.deliveries
      .filter((d) => d.path === "/fwd-proto")
      .map((d) => new Map(Object.entries(d.headers)))
      .map((headers) => [headers.get("__proto__"), headers.get("constructor")]);
    expect(received.sort()).toEqual([
      ["a", "c"],
      ["b", "c"],
    ]);
  });

  test("Upstash-Method picks the delivery method", async () => {
    const put = await client.publish({ url: destination.url("/put"), body: "p", method: "PUT" });
    const get = await client.publish({ url: destination.url("/get"), method: "GET" });
    await waitFor(
      () => destination.of(put.messageId).length === 1 && destination.of(get.messageId).length === 1,
    );
    expect(destination.of(put.messageId)[0]).toMatchObject({ method: "PUT", body: "p" });
    expect(destination.of(get.messageId)[0]).toMatchObject({ method: "GET", body: "" });
  });

  test("Upstash-Timeout cuts a slow attempt and retries it", async () => {
    const { messageId } = await client.publish({
      url: destination.url("/slow"),
      body: "s",
      timeout: "1s",
      retries: 1,
    });
    // Not time-scaled: 1 s timeout against a 300 ms answer is fine.
    await waitFor(() => destination.of(messageId).length === 1, 3000);
    const sent = await call(broker, `/v2/publish/${destination.url("/slow2")}`, {
      method: "POST",
      body: "s",
      headers: { "Upstash-Timeout": "100ms", "Upstash-Retries": "1" },
    });
    const slowId = (sent.body as { messageId: string }).messageId;
    await waitFor(() => destination.deliveries.filter((d) => d.path === "/slow2").length === 2, 5000);
    await waitFor(async () =>
      (await client.logs({ messageIds: [slowId] })).logs.some((l) => l.state === "FAILED"),
    );
    const logs = await client.logs({ messageIds: [slowId] });
    expect(logs.logs.some((l) => l.state === "ERROR" && (l.error ?? "").includes("timeout"))).toBe(true);
  });
});
