// One order, one trace: gateway → order turn → relay → broker → delivery → inventory → … → billing → confirmed,
// read back from the node's embedded trace store (Bun host, embedded broker, real Postgres).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@upstash/qstash";
import { Webhook } from "standardwebhooks";
import { generateSecret } from "../../actors/commerce/webhooks/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import type { StoredSpan } from "../../shared/telemetry/trace/store.ts";
import { TraceStore } from "../../shared/telemetry/trace/store.ts";
import { formatTraceparent, parseTraceparent } from "../../shared/telemetry/trace/index.ts";
import {
  readSampling,
  sampleReads,
  sampleWrites,
  writeSampling,
} from "../../shared/telemetry/trace/sampling.ts";
import { startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, uniqueName } from "../commerce/client.ts";
import { expectGatewayAndTurns, hex, placeTracedOrder } from "./saga-trace.ts";

let running: CommerceNode;
const supplierSecret = generateSecret();
beforeAll(async () => {
  running = await startCommerceNode("trace_bun", { INBOUND_WEBHOOK_SECRETS: `supplier=${supplierSecret}` });
}, 30_000);
afterAll(() => running?.stop());

/** The `url.path` of every span in the node's `count` most recent traces, once what is pending is written. */
async function recordedPaths(count: number): Promise<string[]> {
  const tracing = running.node.tracing;
  if (!tracing) throw new Error("tracing is off");
  await tracing.flush();
  return tracing.store
    .recentTraces(count)
    .flatMap((summary) => tracing.store.trace(summary.traceId))
    .map((span) => String(span.attributes["url.path"] ?? ""));
}

describe("traces (bun)", () => {
  test("one trace id covers the gateway, the actor turns, the deliveries and billing; parents and links are right", async () => {
    const api = running.client;
    const tracing = running.node.tracing;
    expect(tracing).toBeDefined();
    if (!tracing) return;
    const { traceId, callerSpanId } = await placeTracedOrder(api);

    let spans: StoredSpan[] = [];
    const turns = () => spans.filter((span) => span.name.startsWith("turn "));
    await eventually(async () => {
      await tracing.flush();
      spans = tracing.store.trace(traceId);
      // Complete once the order confirmed (its last turn) and every stored span's parent is stored too (a
      // delivery's span ends after the turn inside it).
      const ids = new Set(spans.map((span) => span.spanId));
      return (
        turns().some((span) => span.name === "turn order PaymentCaptured") &&
        spans.some((span) => span.name === "create OrderConfirmed") &&
        spans.every((span) => span.parentSpanId === callerSpanId || ids.has(span.parentSpanId as string)) &&
        // Each delivered message's send, which ends once the broker took it (after its delivery may have started).
        spans
          .filter((span) => span.kind === "CONSUMER")
          .every((consumer) =>
            spans.some((span) => span.kind === "CLIENT" && span.parentSpanId === consumer.parentSpanId),
          )
      );
    }, "the order's spans in the trace store");

    if (process.env.TRACE_DUMP)
      for (const s of spans)
        console.log(s.kind, s.name, s.spanId, "<-", s.parentSpanId, s.links.map((l) => l.spanId).join(","));
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    expect(spans.every((span) => span.traceId === traceId)).toBe(true);

    // The gateway's SERVER span, and the turns under it (saga-trace.ts: the same checks as on workerd).
    const { server } = expectGatewayAndTurns(spans, callerSpanId);

    // Every span's parent is in the trace (the server span's is the caller's).
    for (const span of spans) {
      if (span === server) continue;
      expect(span.parentSpanId && byId.has(span.parentSpanId)).toBe(true);
    }

    // Each PRODUCER span is made by a turn or by billing; each CONSUMER span's parent or link is the PRODUCER
    // span that created its message (same message id).
    const producers = spans.filter((span) => span.kind === "PRODUCER");
    const consumers = spans.filter((span) => span.kind === "CONSUMER");
    expect(producers.length).toBeGreaterThanOrEqual(4);
    expect(consumers.length).toBeGreaterThanOrEqual(4);
    for (const producer of producers) {
      const parent = byId.get(producer.parentSpanId as string);
      expect(parent?.name.startsWith("turn ") || parent?.name.startsWith("billing ")).toBe(true);
    }
    for (const consumer of consumers) {
      const candidates = [consumer.parentSpanId, ...consumer.links.map((link) => link.spanId)];
      const producer = candidates
        .map((id) => byId.get(id as string))
        .find((span) => span?.kind === "PRODUCER");
      expect(producer).toBeDefined();
      expect(consumer.links.some((link) => link.spanId === producer?.spanId)).toBe(true);
      expect(producer?.attributes["messaging.message.id"]).toBe(consumer.attributes["messaging.message.id"]);
      // The relay's publish of that message (a relay's or billing's outbox), under the span that created it, and
      // the time the message then waited in the broker, within its whole wait since the commit.
      const send = spans.find((span) => span.kind === "CLIENT" && span.parentSpanId === producer?.spanId);
      expect(send).toMatchObject({
        name: `send ${producer?.attributes["edgewise.message.type"]}`,
        status: "OK",
        attributes: { "messaging.operation.type": "send" },
      });
      expect(send?.attributes["messaging.message.id"]).toBe(producer?.attributes["messaging.message.id"]);
      expect(send?.startMs).toBeGreaterThanOrEqual(producer?.startMs as number);
      const brokerWait = consumer.attributes["edgewise.broker_wait_ms"];
      expect(brokerWait).toBeGreaterThanOrEqual(0);
      expect(brokerWait).toBeLessThanOrEqual((consumer.attributes["edgewise.queue_time_ms"] as number) + 1);
    }

    // Billing: its transaction span is a delivery's child, and its reply was produced under it.
    const billing = spans.find((span) => span.name === "billing PaymentRequested");
    expect(billing).toBeDefined();
    expect(byId.get(billing?.parentSpanId as string)?.kind).toBe("CONSUMER");
    const reply = producers.find((span) => span.parentSpanId === billing?.spanId);
    expect(reply).toBeDefined();
    // …and the reply's delivery reaches the order again, which confirms it.
    const replyDelivery = consumers.find((span) => span.parentSpanId === reply?.spanId);
    expect(replyDelivery).toBeDefined();
    expect(
      turns().some(
        (span) =>
          span.parentSpanId === replyDelivery?.spanId && span.attributes["edgewise.actor.type"] === "order",
      ),
    ).toBe(true);

    // The store lists the trace among the recent ones.
    expect(tracing.store.recentTraces(100).some((summary) => summary.traceId === traceId)).toBe(true);
    expect((await tracing.console.spans(traceId)).length).toBe(spans.length);
  }, 40_000);
  test("the read side's parts and the webhook fan-out are spans of the order's trace, and each webhook attempt is the fan-out's", async () => {
    const tracing = running.node.tracing;
    if (!tracing) throw new Error("tracing is off");
    // Each webhook's first attempt fails (a 500), its retry succeeds: both attempts must hang under the fan-out.
    // Counted per webhook-id, not per request: an earlier test's order confirmed late (a loaded machine) is also
    // sent to this subscription, and its webhook could otherwise take this order's failure.
    const attemptsOf = new Map<string, number>();
    const receiver = startReceiver((delivery) => {
      const id = delivery.headers["webhook-id"] ?? "";
      const nth = (attemptsOf.get(id) ?? 0) + 1;
      attemptsOf.set(id, nth);
      return nth === 1 ? new Response("boom", { status: 500 }) : new Response("ok");
    });
    const created = await running.client.call<{ id: string }>("POST", "/v1/webhooks/subscriptions", {
      body: { url: receiver.url("/hooks"), events: ["order.confirmed"] },
    });
    expect(created.status).toBe(201);
    try {
      const { traceId } = await placeTracedOrder(running.client);
      let spans: StoredSpan[] = [];
      const attempts = () => spans.filter((span) => span.name === "process WebhookDelivery");
      await eventually(async () => {
        await tracing.flush();
        spans = tracing.store.trace(traceId);
        return attempts().length === 2 && spans.some((span) => span.name === "projector OrderConfirmed");
      }, "the webhook's two attempts and the read side's parts in the order's trace");
      const byId = new Map(spans.map((span) => [span.spanId, span]));
      const readSide = spans.find(
        (span) =>
          span.name === "process OrderConfirmed" &&
          span.attributes["messaging.destination.name"] === "readside/events",
      );
      expect(readSide?.kind).toBe("CONSUMER");
      const parts = spans.filter((span) => span.parentSpanId === readSide?.spanId).map((span) => span.name);
      expect(parts.sort()).toEqual(
        ["activity", "cache", "projector", "webhooks"].map((part) => `${part} OrderConfirmed`),
      );
      const fanOut = spans.find((span) => span.name === "webhooks OrderConfirmed");
      for (const attempt of attempts()) {
        const producer = byId.get(attempt.parentSpanId as string);
        expect(producer?.name).toBe("create WebhookDelivery");
        expect(producer?.kind).toBe("PRODUCER");
        expect(producer?.parentSpanId).toBe(fanOut?.spanId as string);
        expect(attempt.links.map((link) => link.spanId)).toEqual([producer?.spanId as string]);
      }
      expect(
        attempts()
          .map((attempt) => attempt.status)
          .sort(),
      ).toEqual(["ERROR", "OK"]);
    } finally {
      await running.client.call("DELETE", `/v1/webhooks/subscriptions/${created.body.id}`);
      receiver.stop();
    }
  });
  test("a supplier's inbound webhook and the restock it queues are one trace", async () => {
    const tracing = running.node.tracing;
    if (!tracing) throw new Error("tracing is off");
    const sku = uniqueName("restocked");
    await running.client.putSku(sku, 1, 100);
    const [traceId, callerSpanId, webhookId] = [hex(16), hex(8), uniqueName("msg")];
    const body = JSON.stringify({ type: "inventory.restocked", sku, quantity: 4 });
    const at = new Date();
    const answer = await fetch(`${running.node.url}/webhooks/inbound/supplier`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        traceparent: `00-${traceId}-${callerSpanId}-01`,
        "webhook-id": webhookId,
        "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
        "webhook-signature": new Webhook(supplierSecret).sign(webhookId, at, body),
      },
      body,
    });
    expect(answer.status).toBe(202);
    let spans: StoredSpan[] = [];
    await eventually(async () => {
      await tracing.flush();
      spans = tracing.store.trace(traceId);
      return spans.some((span) => span.name === "turn inventory Restock");
    }, "the restock's turn in the webhook's trace");
    const server = spans.find((span) => span.kind === "SERVER");
    expect(server?.parentSpanId).toBe(callerSpanId);
    const delivery = spans.find((span) => span.name === "process Restock");
    expect(delivery?.parentSpanId).toBe(server?.spanId as string);
    expect(spans.find((span) => span.name === "turn inventory Restock")?.parentSpanId).toBe(
      delivery?.spanId as string,
    );
  });
});

describe("read sampling (bun)", () => {
  test("a read is recorded with its turn when sampled (by its caller or the policy); otherwise nothing is, turns included", async () => {
    const tracing = running.node.tracing;
    if (!tracing) throw new Error("tracing is off");
    const customer = uniqueName("reader");
    const read = async (flags: "00" | "01") => {
      const traceId = hex(16);
      const reply = await running.client.call("GET", `/v1/customers/${customer}/loyalty`, {
        headers: { traceparent: `00-${traceId}-${hex(8)}-${flags}` },
      });
      expect(reply.status).toBe(200);
      return traceId;
    };
    // A caller's sampled flag passes the process's read policy too (below), whose default budget (10 a second) this
    // test process's other requests may have spent: all reads pass it here, and the caller's "00" still drops one.
    const policy = readSampling();
    sampleReads({ ratio: 1 });
    const [sampled, dropped] = await (async () => {
      try {
        return [await read("01"), await read("00")];
      } finally {
        sampleReads(policy);
      }
    })();
    await tracing.flush();
    const spans = tracing.store.trace(sampled);
    const server = spans.find((span) => span.kind === "SERVER");
    expect(server?.attributes["http.route"]).toBe("/v1/customers/:customerId/loyalty");
    expect(
      spans.some((span) => span.name === "turn loyalty Get" && span.parentSpanId === server?.spanId),
    ).toBe(true);
    expect(tracing.store.trace(dropped)).toEqual([]);
    // Without a traceparent, a read starts its own trace, recorded as the process's policy says (its default rate is
    // shared by every node in this test process, so it is set here): all of them, then none.
    const plainRead = async () => {
      const plain = uniqueName("plain");
      expect((await running.client.call("GET", `/v1/customers/${plain}/loyalty`)).status).toBe(200);
      await tracing.flush();
      return tracing.store
        .recentTraces(50)
        .map((summary) => tracing.store.trace(summary.traceId))
        .find((trace) =>
          trace.some((span) => span.attributes["url.path"] === `/v1/customers/${plain}/loyalty`),
        );
    };
    try {
      sampleReads({ ratio: 1 });
      expect((await plainRead())?.map((span) => span.name).sort()).toEqual([
        "GET /v1/customers/:customerId/loyalty",
        "turn loyalty Get",
      ]);
      // A token-shaped path segment (a token pasted into a URL) is masked in the span, as in logs.
      const token = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.${hex(16)}`;
      await running.client.call("GET", `/v1/customers/${token}/loyalty`);
      const paths = await recordedPaths(50);
      expect(paths).toContain("/v1/customers/[redacted]/loyalty");
      expect(paths.filter((path) => path.includes(token))).toEqual([]);
      // A path as long as the request line allows is cut, so the span store's size stays bounded by its count.
      const long = "x".repeat(8_000);
      await running.client.call("GET", `/v1/customers/${long}/loyalty`);
      const cut = (await recordedPaths(50)).find((path) =>
        path.startsWith(`/v1/customers/${long.slice(0, 100)}`),
      );
      expect(cut?.length).toBe(1025);
      expect(cut?.endsWith("…")).toBe(true);
      sampleReads({ ratio: 0 });
      expect(await plainRead()).toBeUndefined();
      // A caller's sampled traceparent passes the same policy: an outsider cannot make its requests recorded.
      const forced = hex(16);
      const forcedRead = await running.client.call("GET", `/v1/customers/${uniqueName("forced")}/loyalty`, {
        headers: { traceparent: `00-${forced}-${hex(8)}-01` },
      });
      expect(forcedRead.status).toBe(200);
      await tracing.flush();
      expect(tracing.store.trace(forced)).toEqual([]);
    } finally {
      sampleReads(policy);
    }
    // …and no turn started a trace of its own either.
    const stray = tracing.store
      .recentTraces(50)
      .flatMap((summary) => tracing.store.trace(summary.traceId))
      .filter((span) => span.name === "turn loyalty Get" && span.parentSpanId === undefined);
    expect(stray).toEqual([]);
  });
});

describe("the console's own requests (bun)", () => {
  test("are not recorded, and leave the read budget to the API: its pages, assets, live stream and forms", async () => {
    const tracing = running.node.tracing;
    if (!tracing) throw new Error("tracing is off");
    const [reads, writes] = [readSampling(), writeSampling()];
    const admin = { authorization: `Bearer ${await running.client.token()}` };
    const base = running.node.url;
    try {
      // One read, then one every 10 s; the same for writes. Whatever the console spends is gone for the API.
      sampleReads({ perSecond: 0.1 });
      sampleWrites({ perSecond: 0.1 });
      const sampledCaller = { ...admin, traceparent: `00-${hex(16)}-${hex(8)}-01` };
      for (const path of ["/_console", "/_console/static/console.js", "/_console/static/console.css"]) {
        await (
          await fetch(`${base}${path}`, { headers: path === "/_console" ? sampledCaller : admin })
        ).text();
      }
      await (await fetch(`${base}/_console/actors/order/${uniqueName("none")}`, { headers: admin })).text();
      await (await fetch(`${base}/_console/logout`, { method: "POST", headers: admin })).text();
      // The live stream: its first frame, then the client goes away (the span would end then).
      const stream = new AbortController();
      const live = await fetch(`${base}/_console/events/stream`, { headers: admin, signal: stream.signal });
      await live.body?.getReader().read();
      stream.abort();

      const plain = uniqueName("after-console");
      expect((await running.client.call("GET", `/v1/customers/${plain}/loyalty`)).status).toBe(200);
      await Bun.sleep(50);
      const paths = await recordedPaths(100);
      expect(paths.filter((path) => path.startsWith("/_console"))).toEqual([]);
      expect(paths).toContain(`/v1/customers/${plain}/loyalty`);
      // …and the console's own port lists none of them.
      const listed = await tracing.console.recentTraces(100);
      expect(listed.filter((summary) => summary.name?.includes("/_console"))).toEqual([]);
    } finally {
      sampleReads(reads);
      sampleWrites(writes);
    }
  });
});

describe("health probes and metric scrapes (bun)", () => {
  test("are not recorded, and leave the read budget to the API; they are still counted in the metrics", async () => {
    const tracing = running.node.tracing;
    if (!tracing) throw new Error("tracing is off");
    const reads = readSampling();
    const base = running.node.url;
    const routeCount = (text: string, route: string) =>
      text
        .split("\n")
        .filter(
          (line) =>
            line.startsWith("http_server_request_duration_seconds_count{") &&
            line.includes(`http_route="${route}"`),
        )
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
    const before = await (await fetch(`${base}/metrics`)).text();
    try {
      // One read, then one every 10 s: a load balancer's probes and a scrape would take it from the API.
      sampleReads({ perSecond: 0.1 });
      const sampledCaller = { traceparent: `00-${hex(16)}-${hex(8)}-01` };
      for (const path of ["/healthz", "/readyz", "/metrics", "/healthz", "/readyz"]) {
        const answer = await fetch(`${base}${path}`, { headers: path === "/readyz" ? sampledCaller : {} });
        expect({ path, status: answer.status }).toEqual({ path, status: 200 });
        await answer.text();
      }
      const plain = uniqueName("after-probes");
      expect((await running.client.call("GET", `/v1/customers/${plain}/loyalty`)).status).toBe(200);
      await Bun.sleep(50);
      const paths = await recordedPaths(100);
      expect(paths.filter((path) => ["/healthz", "/readyz", "/metrics"].includes(path))).toEqual([]);
      expect(paths).toContain(`/v1/customers/${plain}/loyalty`);
    } finally {
      sampleReads(reads);
    }
    // Counted as before: in the request metrics, by route (a scrape within a second may be the cached render).
    await Bun.sleep(1_100);
    const after = await (await fetch(`${base}/metrics`)).text();
    expect(routeCount(after, "/healthz") - routeCount(before, "/healthz")).toBe(2);
    expect(routeCount(after, "/readyz") - routeCount(before, "/readyz")).toBe(2);
  });
});

describe("write sampling (bun)", () => {
  /** Every stored span of the recent traces. */
  const storedSpans = async () => {
    const tracing = running.node.tracing;
    if (!tracing) throw new Error("tracing is off");
    await tracing.flush();
    return tracing.store.recentTraces(2_000).flatMap((summary) => tracing.store.trace(summary.traceId));
  };
  /** The StockChanged event the activity log recorded for `sku` (the read side consumed it). */
  const stockChanged = async (sku: string) => {
    let event: { id: string; traceparent?: string } | undefined;
    await eventually(async () => {
      const reply = await running.client.call<{ items: Array<Record<string, unknown>> }>(
        "GET",
        "/v1/activity?type=StockChanged&limit=100",
      );
      const item = reply.body.items?.find((entry) => (entry.data as { sku?: string })?.sku === sku);
      event = item as typeof event;
      return item !== undefined;
    }, `StockChanged for ${sku} in the activity log`);
    return event as { id: string; traceparent?: string };
  };

  /** Spans naming `sku` or one of `messageIds`, once the StockChanged the write caused is in the activity log. */
  const spansOf = async (sku: string, messageIds: string[] = []) => {
    const event = await stockChanged(sku);
    const ids = new Set([...messageIds, event.id]);
    const spans = (await storedSpans()).filter(
      (span) =>
        span.attributes["edgewise.actor.key"] === sku ||
        ids.has(String(span.attributes["messaging.message.id"])),
    );
    return { event, spans };
  };
  /** Runs `write` with every write that starts a trace kept, then with none. */
  const keptThenDropped = async <T>(write: () => Promise<T>): Promise<{ kept: T; dropped: T }> => {
    const policy = writeSampling();
    try {
      sampleWrites({ ratio: 1 });
      const kept = await write();
      sampleWrites({ ratio: 0 });
      return { kept, dropped: await write() };
    } finally {
      sampleWrites(policy);
    }
  };
  const unsampled = /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/;

  test("an ask from code starts a trace as the policy for writes says; a dropped one is dropped at every hop", async () => {
    const host = running.node.host;
    if (!host) throw new Error("no local host");
    const { kept, dropped } = await keptThenDropped(async () => {
      const sku = uniqueName("sampled");
      await host.ask({ type: "inventory", key: sku }, "Put", { available: 3, priceCents: 100 });
      return spansOf(sku);
    });
    const turn = kept.spans.find((span) => span.name === "turn inventory Put");
    expect(turn?.parentSpanId).toBeUndefined();
    // The event's delivery continues the turn's trace, and its traceparent says "sampled".
    expect(kept.event.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const delivery = kept.spans.find((span) => span.kind === "CONSUMER");
    expect(delivery?.traceId).toBe(turn?.traceId as string);
    // Nothing recorded: not the turn, not the PRODUCER span, not the delivery of the event it sent, which
    // carried the dropped trace's context (sampled flag off) instead of starting a trace of its own.
    expect(dropped.spans).toEqual([]);
    expect(dropped.event.traceparent).toMatch(unsampled);
  });

  test("a message published without a traceparent starts a trace at its delivery, as the policy for writes says", async () => {
    const broker = running.node.broker;
    if (!broker) throw new Error("no embedded broker");
    const client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
    const { kept, dropped } = await keptThenDropped(async () => {
      const sku = uniqueName("outside");
      const target = `inventory/${sku}`;
      const command = createEnvelope({
        type: "Put",
        source: "edgewise://test/outside",
        target,
        data: { available: 2, priceCents: 100 },
      });
      await client.publishJSON({ url: `${running.node.url}/_edgewise/deliver/${target}`, body: command });
      return spansOf(sku, [command.id]);
    });
    const delivery = kept.spans.find((span) => span.name === "process Put");
    expect(delivery?.kind).toBe("CONSUMER");
    expect(delivery?.parentSpanId).toBeUndefined();
    expect(kept.spans.find((span) => span.name === "turn inventory Put")?.parentSpanId).toBe(
      delivery?.spanId as string,
    );
    expect(kept.event.traceparent).toMatch(/-01$/);
    expect(dropped.spans).toEqual([]);
    expect(dropped.event.traceparent).toMatch(unsampled);
  });

  test("a write request without a traceparent is sampled by the gateway: dropped, its whole order records nothing", async () => {
    const reads = readSampling();
    // The test's own polls (GET the order until it settles) are reads that start traces of their own: none here.
    sampleReads({ ratio: 0 });
    const api = running.client;
    const order = async () => {
      const [sku, customer] = [uniqueName("apple"), uniqueName("alice")];
      await api.putSku(sku, 10, 250);
      await api.putAccount(customer, 10_000);
      const placed = await api.place(customer, [{ sku, quantity: 1 }]);
      expect(placed.status).toBe(202);
      const orderId = placed.body.orderId;
      expect((await api.settle(orderId)).status).toBe("confirmed");
      const keys = new Set([orderId, sku, customer]);
      return (await storedSpans()).filter((span) => keys.has(String(span.attributes["edgewise.actor.key"])));
    };
    try {
      const { kept, dropped } = await keptThenDropped(order);
      expect(kept.some((span) => span.name === "turn order PaymentCaptured")).toBe(true);
      expect(kept.some((span) => span.name === "turn inventory OrderPlaced")).toBe(true);
      expect(dropped).toEqual([]);
    } finally {
      sampleReads(reads);
    }
  });
});

describe("trace store", () => {
  test("is bounded: the oldest spans are evicted", () => {
    const store = new TraceStore(openBunSqlite(":memory:", "NORMAL"), { maxSpans: 5 });
    const span = (traceId: string, i: number): StoredSpan => ({
      traceId,
      spanId: hex(8),
      name: `s${i}`,
      kind: "INTERNAL",
      startMs: i,
      durationMs: 1,
      status: "UNSET",
      attributes: {},
      links: [],
    });
    store.write([1, 2, 3].map((i) => span("a".repeat(32), i)));
    store.write([4, 5, 6, 7].map((i) => span("b".repeat(32), i)));
    expect(store.count()).toBe(5);
    expect(store.trace("a".repeat(32)).map((s) => s.name)).toEqual(["s3"]);
    expect(store.recentTraces().map((t) => t.traceId)).toEqual(["b".repeat(32), "a".repeat(32)]);
    store.close();
  });

  test("traceparent round-trips", () => {
    const traceparent = `00-${hex(16)}-${hex(8)}-01`;
    const parsed = parseTraceparent(traceparent);
    expect(parsed && formatTraceparent(parsed)).toBe(traceparent);
    expect(parseTraceparent(`00-${"0".repeat(32)}-${hex(8)}-01`)).toBeUndefined();
    expect(parseTraceparent("garbage")).toBeUndefined();
  });
});
