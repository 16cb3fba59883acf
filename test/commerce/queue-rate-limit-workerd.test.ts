// QStash's 429 to a Durable Object's relay on workerd: the gateway's /readyz names the reset (rateLimitedUntil, still
// ready, as a node) and the objects' OTLP metrics carry edgewise_queue_rate_limited_seconds; both clear once a publish
// is taken. The production Worker under `wrangler dev`, the local broker behind a front that answers Upstash's 429.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { eventually, uniqueName } from "./client.ts";
import { type CommerceWorker, startCommerceWorker } from "./workerd-node.ts";
import { dailyLimitAnswer } from "../support/qstash-limit.ts";

/** In front of the local broker: while `limited`, every publish gets Upstash's daily-limit 429 with a reset an hour on. */
function limitedFront() {
  const resetAt = Math.floor(Date.now() / 1000) + 3_600;
  const state = { target: "", limited: true, refused: 0, passed: 0 };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      if (state.limited && request.method === "POST" && /^\/v2\/(batch|publish|enqueue)/.test(url.pathname)) {
        state.refused += 1;
        return dailyLimitAnswer(resetAt);
      }
      if (request.method === "POST" && url.pathname.startsWith("/v2/batch")) state.passed += 1;
      const headers = new Headers(request.headers);
      headers.delete("host");
      return fetch(`${state.target}${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        ...(request.method === "GET" || request.method === "HEAD"
          ? {}
          : { body: await request.arrayBuffer() }),
      });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, resetAt, state, stop: () => server.stop(true) };
}

/** An OTLP/HTTP receiver: the value of every pushed point of the queue's gauge, with the pushing isolate's role. */
function gaugeReceiver() {
  const points: Array<{ role: unknown; value: number }> = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      if (new URL(request.url).pathname !== "/v1/metrics") return Response.json({});
      const pushed = (await request.json()) as {
        resourceMetrics: Array<{
          resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
          scopeMetrics: Array<{
            metrics: Array<{ name: string; gauge?: { dataPoints: Array<{ asDouble: number }> } }>;
          }>;
        }>;
      };
      for (const resource of pushed.resourceMetrics) {
        const role = resource.resource?.attributes?.find((a) => a.key === "edgewise.isolate.role")?.value
          .stringValue;
        for (const metric of resource.scopeMetrics.flatMap((scope) => scope.metrics)) {
          // edgewise_queue_rate_limited_seconds under its OTel name (otlp.ts `otelName`).
          if (metric.name !== "edgewise.queue.rate.limited") continue;
          for (const point of metric.gauge?.dataPoints ?? []) points.push({ role, value: point.asDouble });
        }
      }
      return Response.json({});
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, points, stop: () => server.stop(true) };
}

interface Readiness {
  status: string;
  dependencies: Record<string, { ok: boolean; breaker?: string; rateLimitedUntil?: string }>;
}

const front = limitedFront();
const receiver = gaugeReceiver();
let running: CommerceWorker | undefined;

beforeAll(async () => {
  running = await startCommerceWorker("queue_limit_cf", (broker) => {
    front.state.target = broker.url;
    return {
      QSTASH_URL: front.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      // Pushed when a call or alarm ends and this long has passed (workerd runs no timers between requests).
      OTEL_METRIC_EXPORT_INTERVAL: "200",
    };
  });
}, 60_000);

afterAll(async () => {
  await running?.stop();
  front.stop();
  receiver.stop();
});

const readiness = async (base: string) => {
  const response = await fetch(`${base}/readyz`);
  return { status: response.status, body: (await response.json()) as Readiness };
};

test("a 429 to an order object's relay shows in the gateway's /readyz and the objects' metrics, until a publish is taken", async () => {
  const { client: api, worker } = running as CommerceWorker;
  const before = await readiness(worker.match);
  expect(before.body.dependencies.broker?.rateLimitedUntil).toBeUndefined();

  const [pear, bob] = [uniqueName("pear"), uniqueName("bob")];
  await api.putSku(pear, 10, 100);
  await api.putAccount(bob, 10_000);
  // The order object commits OrderPlaced in its outbox; its alarm's relay publishes it, and the queue answers 429.
  const first = await api.place(bob, [{ sku: pear, quantity: 1 }]);
  expect(first.status).toBe(202);
  await eventually(() => front.state.refused > 0, "the order object's relay refused with 429");
  // The gateway's own transport (billing's relay) published nothing: what /readyz shows came from the object.
  expect(front.state.passed).toBe(0);

  const reset = new Date(front.resetAt * 1000).toISOString();
  let limited: Awaited<ReturnType<typeof readiness>> | undefined;
  await eventually(async () => {
    limited = await readiness(worker.match);
    return limited.body.dependencies.broker?.rateLimitedUntil !== undefined;
  }, "/readyz naming the queue's reset");
  // As on a node: the queue answers (its limit is spent), so the Worker stays ready and the breaker closed.
  expect(limited?.status).toBe(200);
  expect(limited?.body.status).toBe("ready");
  expect(limited?.body.dependencies.broker).toMatchObject({ ok: true, breaker: "closed" });
  // The reset QStash gave, within the second a duration across isolates' clocks may cost.
  const shown = Date.parse(limited?.body.dependencies.broker?.rateLimitedUntil as string);
  expect(Math.abs(shown - Date.parse(reset))).toBeLessThanOrEqual(1_000);
  // The objects' isolate pushes the gauge: about an hour to go. It pushes when an RPC call or alarm ends (the relay
  // waits a minute for its next pass): a read of the sku is such a call.
  await eventually(async () => {
    await api.sku(pear);
    return receiver.points.some((point) => point.role === "actors" && point.value > 3_000);
  }, "the actor objects' OTLP push of edgewise.queue.rate.limited above 3,000 s");

  // The limit lifts; another order's relay has its publish taken, and both clear (the first order's relay waits for
  // its own retry, up to a minute).
  front.state.limited = false;
  const pushesBefore = receiver.points.length;
  const second = await api.place(bob, [{ sku: pear, quantity: 1 }]);
  expect(second.status).toBe(202);
  await eventually(async () => {
    const after = await readiness(worker.match);
    return after.status === 200 && after.body.dependencies.broker?.rateLimitedUntil === undefined;
  }, "/readyz without rateLimitedUntil once a publish is taken");
  await eventually(async () => {
    await api.sku(pear);
    return receiver.points.slice(pushesBefore).some((point) => point.role === "actors" && point.value === 0);
  }, "the actor objects' gauge back at 0");
}, 90_000);
