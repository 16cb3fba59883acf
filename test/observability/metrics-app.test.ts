// /metrics in process: the app, the local host and the rate limiter feed it, and a real parser reads it.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { defineActor } from "../../actors/runtime/index.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { createApp } from "../../edge/app.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { memoryLimiter, rateLimit } from "../../edge/middleware/rate-limit/index.ts";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { Dependencies } from "../../shared/resilience/index.ts";
import { EdgewiseMetrics } from "../../shared/telemetry/metrics/index.ts";
import { parseMetrics, type Scrape } from "./metrics-scrape.ts";

// Publishes an event per ping; with no transport the outbox keeps it, which is what the lag gauges show.
const pinger = defineActor({
  type: "pinger",
  state: v.object({ pings: v.number() }),
  initial: () => ({ pings: 0 }),
  messages: { Ping: v.object({}) },
  handlers: {
    Ping(ctx) {
      ctx.state.pings += 1;
      ctx.publish("Pinged", { n: ctx.state.pings });
      return ctx.state;
    },
  },
});

const clock = new ManualClock(Date.parse("2026-11-01T00:00:00Z"));
const metrics = new EdgewiseMetrics();
const host = new LocalActorHost({
  actors: [counterActor, pinger],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-metrics-")), "actors.db")),
  clock,
  onTurn: (record) => metrics.turn(record),
});
metrics.observeActors(() => host.stats().byType).observeOutbox(() => host.outboxBacklog());
afterAll(() => host.stop());

const signingKey = "sig_current_for_metrics";
const publicUrl = "http://edge.test";
const metricsToken = "scrape-token-0123456789";
const app = createApp({
  actors: host,
  dependencies: new Dependencies(),
  metrics,
  metricsToken,
  delivery: { currentSigningKey: signingKey, nextSigningKey: "sig_next_for_metrics", publicUrl },
  rateLimit: rateLimit({
    limiterFor: () => memoryLimiter({ limit: 3, windowMs: 60_000 }),
    onDecision: (decision, routeClass) => metrics.rateLimit(decision, routeClass),
  }),
});

async function read(): Promise<Scrape> {
  const response = await app.request("/metrics", { headers: { authorization: `Bearer ${metricsToken}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parseMetrics(await response.text());
}

const http = "http_server_request_duration_seconds";

test("with a metrics token, /metrics refuses a scrape without it", async () => {
  expect((await app.request("/metrics")).status).toBe(401);
  expect((await app.request("/metrics", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
});

test("with a metrics token and JWTs configured, an admin JWT scrapes too (API.md: admin where configured)", async () => {
  const secret = "metrics-admin-secret-0123456789-abcdef";
  const guarded = createApp({ actors: host, metrics, metricsToken, auth: { secret } });
  const scrape = async (bearer: string) =>
    (await guarded.request("/metrics", { headers: { authorization: `Bearer ${bearer}` } })).status;
  const jwt = (scopes: string[]) => issueToken({ sub: "ops", scopes, ttlSeconds: 60, secret });
  expect(await scrape(metricsToken)).toBe(200);
  expect(await scrape(await jwt(["admin"]))).toBe(200);
  expect(await scrape(await jwt(["orders:read"]))).toBe(403);
  expect(await scrape(`${await jwt(["admin"])}x`)).toBe(401);
  expect((await guarded.request("/metrics")).status).toBe(401);
});

test("requests, turns, mailboxes and rate-limit decisions move with the traffic", async () => {
  const before = await read();
  for (let i = 0; i < 5; i++) {
    const response = await app.request("/v1/counters/c1/increment", { method: "POST" });
    expect(response.status).toBe(i < 3 ? 200 : 429);
  }
  for (let i = 0; i < 2; i++) expect((await app.request("/v1/counters/c1")).status).toBe(200);
  expect((await app.request("/no/such/path/c1")).status).toBe(404);
  const after = await read();

  // HTTP: by route pattern, never the raw path. A 429 is answered by middleware, and still counts against the
  // route it was refused on; a path no handler matches is `/*`.
  const route = "/v1/counters/:key/increment";
  const delta = (name: string, labels: Record<string, string>) =>
    after.count(name, labels) - before.count(name, labels);
  expect(
    delta(http, { http_route: route, http_request_method: "POST", http_response_status_code: "200" }),
  ).toBe(3);
  expect(
    delta(http, { http_route: route, http_request_method: "POST", http_response_status_code: "429" }),
  ).toBe(2);
  expect(delta(http, { http_route: "/*", http_response_status_code: "404" })).toBe(1);
  expect(delta(http, { http_route: "/v1/counters/:key", http_request_method: "GET" })).toBe(2);
  expect(after.text).not.toContain("/v1/counters/c1");
  // The previous scrape itself is counted too.
  expect(delta(http, { http_route: "/metrics" })).toBe(1);

  // Turns: three increments wrote, two gets only read.
  const turns = "edgewise_actor_turn_duration_seconds";
  expect(delta(turns, { actor_type: "counter", outcome: "write" })).toBe(3);
  expect(delta(turns, { actor_type: "counter", outcome: "read" })).toBe(2);
  expect(delta("edgewise_actor_mailbox_wait_seconds", { actor_type: "counter" })).toBe(5);
  expect(after.value("edgewise_actors_active", { actor_type: "counter" })).toBe(1);
  expect(after.type("edgewise_actor_mailbox_depth")).toBe("gauge");
  expect(after.value("edgewise_actor_mailbox_depth", { actor_type: "counter" })).toBe(0);

  // Rate limits: the write class allowed three, limited two; reads are their own class.
  const decisions = (labels: Record<string, string>) =>
    after.value("edgewise_rate_limit_decisions_total", labels) -
    before.value("edgewise_rate_limit_decisions_total", labels);
  expect(decisions({ route_class: "write", decision: "allowed", success: "true" })).toBe(3);
  expect(decisions({ route_class: "write", decision: "limited", success: "false" })).toBe(2);
  expect(decisions({ route_class: "read", decision: "allowed" })).toBe(3); // the 404 was counted too

  // The breakers are in the same registry, in the same series as before issue 7.
  expect(after.type("edgewise_breaker_state")).toBe("gauge");
  expect(after.type("edgewise_breaker_calls_total")).toBe("counter");
});

test("outbox backlog and lag: committed events waiting for a transport, and how old the oldest is", async () => {
  const before = await read();
  expect(before.value("edgewise_outbox_pending")).toBe(0);
  expect(before.value("edgewise_outbox_lag_seconds")).toBe(0);
  await host.ask({ type: "pinger", key: "p" }, "Ping", {});
  clock.advance(1_000);
  await host.ask({ type: "pinger", key: "p" }, "Ping", {});
  clock.advance(2_500);
  const after = await read();
  expect(after.value("edgewise_outbox_pending")).toBe(2);
  expect(after.value("edgewise_outbox_lag_seconds")).toBe(3.5);
});

test("deliveries: by target type and outcome; an unsigned caller cannot mint label values", async () => {
  const sign = createSigner(signingKey);
  const deliver = async (key: string, body: string, headers: Record<string, string> = {}) => {
    const url = `${publicUrl}/_edgewise/deliver/counter/${key}`;
    return app.request(url, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        "upstash-signature": await sign(url, new TextEncoder().encode(body)),
        ...headers,
      },
    });
  };
  const envelope = JSON.stringify(
    createEnvelope({ type: "Increment", source: "edgewise://test", target: "counter/d1", data: { by: 1 } }),
  );
  const before = await read();
  expect((await deliver("d1", envelope)).status).toBe(200);
  expect((await deliver("d1", envelope, { "upstash-retried": "1" })).status).toBe(200); // a redelivery
  expect((await deliver("d2", envelope)).status).toBe(489); // target ≠ URL: poison
  const forged = await app.request(`${publicUrl}/_edgewise/deliver/attacker-chosen/x`, {
    method: "POST",
    body: envelope,
    headers: { "upstash-signature": "forged" },
  });
  expect(forged.status).toBe(401);
  const after = await read();

  const deliveries = (labels: Record<string, string>) =>
    after.value("edgewise_deliveries_total", labels) - before.value("edgewise_deliveries_total", labels);
  expect(deliveries({ target_type: "counter", outcome: "processed", status_class: "2xx" })).toBe(1);
  expect(deliveries({ target_type: "counter", outcome: "duplicate", status_class: "2xx" })).toBe(1);
  expect(deliveries({ target_type: "counter", outcome: "rejected", status_class: "4xx" })).toBe(1);
  expect(deliveries({ target_type: "_unverified", outcome: "unauthorized" })).toBe(1);
  expect(
    after.value("edgewise_delivery_retries_total", { target_type: "counter" }) -
      before.value("edgewise_delivery_retries_total", { target_type: "counter" }),
  ).toBe(1);
  const processed = "messaging_process_duration_seconds";
  expect(
    after.count(processed, { messaging_destination_name: "counter" }) -
      before.count(processed, { messaging_destination_name: "counter" }),
  ).toBe(3);
  expect(after.count(processed, { messaging_destination_name: "counter", error_type: "489" })).toBe(1);
  expect(after.text).not.toContain("attacker-chosen");
  // A delivery is one turn of its target: the duplicate never reached the handler.
  expect(
    after.count("edgewise_actor_turn_duration_seconds", { actor_type: "counter", outcome: "duplicate" }),
  ).toBe(1);
});

test("during a rotation of the metrics token, the previous one scrapes beside it; a third token does not", async () => {
  const previous = "previous-scrape-token-0123456789";
  const rotating = createApp({ actors: host, metrics, metricsToken, metricsPreviousToken: previous });
  const scrape = async (bearer: string) =>
    (await rotating.request("/metrics", { headers: { authorization: `Bearer ${bearer}` } })).status;
  expect([
    await scrape(metricsToken),
    await scrape(previous),
    await scrape("a-third-scrape-token-0123"),
  ]).toEqual([200, 200, 401]);
  // Without a rotation, the token alone.
  const alone = await app.request("/metrics", { headers: { authorization: `Bearer ${previous}` } });
  expect(alone.status).toBe(401);
});
