// Logs through the whole gateway (app.request): no credential in any line, request and trace ids in every request's lines, security events bounded.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { createApp, securityReporters } from "../../edge/app.ts";
import type { GatewayEnv } from "../../edge/env.ts";
import { MemoryApiKeyStore } from "../../edge/middleware/auth/api-key-store.ts";
import { issueApiKey } from "../../edge/middleware/auth/api-keys.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { memoryLimiter, rateLimit } from "../../edge/middleware/rate-limit/index.ts";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import {
  boundedSecurityEvents,
  captureSink,
  createLogger,
  type SecurityEvent,
} from "../../shared/telemetry/log/index.ts";

const jwtSecret = "logs-test-secret-logs-test-secret-0123456789";
const signingKeys = {
  currentSigningKey: "sig_LogsTestCurrent0123456789",
  nextSigningKey: "sig_LogsTestNext0123456789",
};
const publicUrl = "http://edge.test";
const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwQh8Kz3bY";
const webhookSignature = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=";
const upstashToken = "AX8sASQgN2Q5ZjE1YTQtYjBiZS00ZDg2LWE3ZmQtNjQ4ZjI3YzNhYjE0ZmE1OWQ4Y2E3";

const host = new LocalActorHost({
  actors: [counterActor],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-logs-")), "actors.db")),
});
afterAll(() => host.stop());

const capture = captureSink();
// Debug: the strictest setting, every line the gateway can write is captured.
const logger = createLogger({ level: "debug", sink: capture.sink });
const clock = new ManualClock(Date.now());
// The limiter's own clock, at the start of a window and never moved: a real clock could cross a window boundary
// mid-test and hand out a fresh budget.
const limiterClock = new ManualClock(1_000 * 60_000);
const recorded: SecurityEvent[] = [];
const security = boundedSecurityEvents({ record: (event) => void recorded.push(event), perSecond: 5, clock });

// Routes where a careless handler logs what it should not, and one that fails with secrets in its error.
const careless = new Hono<GatewayEnv>();
careless.post("/test/careless", (c) => {
  c.var.log.info(`forwarding with Bearer ${c.req.header("x-forward-token")}`, {
    headers: c.req.raw.headers,
    upstream: { url: "https://redis.example", token: upstashToken },
  });
  return c.json({ ok: true });
});
careless.get("/test/boom", () => {
  throw new Error(`upstream refused ${upstashToken}`, {
    cause: Object.assign(new Error(`signing with ${webhookSecret} failed`), { password: "hunter2" }),
  });
});

const apiKeys = new MemoryApiKeyStore();
const app = createApp({
  actors: host,
  auth: { secret: jwtSecret },
  apiKeys,
  delivery: { ...signingKeys, publicUrl },
  rateLimit: rateLimit({
    clock: limiterClock,
    limiterFor: () => memoryLimiter({ limit: 3, windowMs: 60_000, clock: limiterClock }),
    onDenied: securityReporters(security.emit).onDenied,
    exempt: ["/test/*"],
  }),
  clientIp: async (c, next) => {
    c.set("clientIp", c.req.header("x-test-ip") ?? "203.0.113.9");
    await next();
  },
  routes: [careless],
  logger,
  securityEvents: security.emit,
});

const jsonHeaders = { "content-type": "application/json" };

describe("logs through the gateway", () => {
  test("no token, key, signature or secret appears in any line, whatever the request did", async () => {
    const valid = await issueToken({ sub: "alice", scopes: ["admin"], ttlSeconds: 600, secret: jwtSecret });
    const forged = await issueToken({
      sub: "mallory",
      scopes: ["admin"],
      ttlSeconds: 600,
      secret: "not-the-secret-not-the-secret-0123456789",
    });
    const { key: apiKey } = await issueApiKey(apiKeys, { sub: "svc", scopes: ["admin"] });
    const wrongKey = `${apiKey.slice(0, -4)}AAAA`;
    const body = JSON.stringify(
      createEnvelope({
        type: "Increment",
        source: "edgewise://test",
        target: "counter/logs",
        data: { by: 1 },
      }),
    );
    const deliveryUrl = `${publicUrl}/_edgewise/deliver/counter/logs`;
    const goodSignature = await createSigner(signingKeys.currentSigningKey)(
      deliveryUrl,
      new TextEncoder().encode(body),
    );
    const badSignature = await createSigner("sig_SomeoneElsesKey0123456789")(
      deliveryUrl,
      new TextEncoder().encode(body),
    );

    const sent: Array<{ name: string; response: Response }> = [];
    const send = async (name: string, path: string, init: RequestInit = {}) => {
      const response = await app.request(path, init);
      sent.push({ name, response });
      return response;
    };
    const increment = (headers: Record<string, string>) => ({
      method: "POST",
      body: '{"by":1}',
      headers: { ...jsonHeaders, ...headers },
    });

    expect(
      (await send("jwt", "/v1/counters/a/increment", increment({ authorization: `Bearer ${valid}` }))).status,
    ).toBe(200);
    expect(
      (await send("forged", "/v1/counters/a/increment", increment({ authorization: `Bearer ${forged}` })))
        .status,
    ).toBe(401);
    expect(
      (await send("api key", "/v1/counters/a/increment", increment({ "x-api-key": apiKey }))).status,
    ).toBe(200);
    expect(
      (await send("wrong key", "/v1/counters/a/increment", increment({ "x-api-key": wrongKey }))).status,
    ).toBe(401);
    expect(
      (
        await send(
          "both",
          "/v1/counters/a/increment",
          increment({ authorization: `Bearer ${valid}`, "x-api-key": apiKey }),
        )
      ).status,
    ).toBe(400);
    expect(
      (
        await send("delivery", deliveryUrl, {
          method: "POST",
          body,
          headers: { "upstash-signature": goodSignature },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await send("bad delivery", deliveryUrl, {
          method: "POST",
          body,
          headers: { "upstash-signature": badSignature },
        })
      ).status,
    ).toBe(401);
    expect(
      (
        await send("careless", "/test/careless", {
          method: "POST",
          body: JSON.stringify({ secret: webhookSecret }),
          headers: {
            ...jsonHeaders,
            authorization: `Bearer ${valid}`,
            cookie: `session=${valid}`,
            "x-forward-token": forged,
            "webhook-id": "msg_1",
            "webhook-signature": webhookSignature,
          },
        })
      ).status,
    ).toBe(200);
    expect((await send("boom", "/test/boom", { headers: { authorization: `Bearer ${valid}` } })).status).toBe(
      500,
    );

    const secrets = {
      valid,
      forged,
      apiKey,
      // The secret is base64url, which may itself hold "_": everything after `ew_<id>_`.
      apiKeySecret: apiKey.split("_").slice(2).join("_"),
      wrongKey,
      goodSignature,
      badSignature,
      webhookSecret,
      webhookSignature,
      upstashToken,
      jwtSecret,
      password: "hunter2",
    };
    expect(capture.lines.length).toBeGreaterThan(sent.length);
    for (const line of capture.lines) {
      for (const [name, secret] of Object.entries(secrets)) {
        if (line.includes(secret)) throw new Error(`${name} appears in a log line: ${line}`);
      }
    }

    const records = capture.records();
    for (const record of records) {
      expect(typeof record.time).toBe("string");
      expect(["debug", "info", "warn", "error"]).toContain(record.level as string);
      expect(typeof record.msg).toBe("string");
    }
    // Every request left lines carrying its id, the access line among them.
    for (const { name, response } of sent) {
      const id = response.headers.get("x-request-id");
      expect({ name, id: typeof id }).toEqual({ name, id: "string" });
      const mine = records.filter((record) => record.request_id === id);
      expect({ name, access: mine.some((record) => record.msg === "request") }).toEqual({
        name,
        access: true,
      });
    }
    const access = (name: string) => {
      const id = sent.find((entry) => entry.name === name)?.response.headers.get("x-request-id");
      return records.find((record) => record.request_id === id && record.msg === "request");
    };
    expect(access("jwt")).toMatchObject({
      level: "info",
      method: "POST",
      route: "/v1/counters/:key/increment",
      status: 200,
      client_ip: "203.0.113.9",
      sub: "alice",
    });
    expect(access("forged")).toMatchObject({ status: 401, route: "/v1/counters/:key/increment" });
    expect(access("forged")?.sub).toBeUndefined();

    // The 500: logged at error with its cause chain, secrets masked, nothing else of the error's properties.
    const boomId = sent.find((entry) => entry.name === "boom")?.response.headers.get("x-request-id");
    const failure = records.find((record) => record.request_id === boomId && record.level === "error");
    expect(failure).toMatchObject({
      msg: "request failed",
      method: "GET",
      path: "/test/boom",
      error: {
        name: "Error",
        message: "upstream refused [redacted]",
        cause: { message: "signing with [redacted] failed" },
      },
    });
    // The 401s: debug lines with the public reason.
    const forgedId = sent.find((entry) => entry.name === "forged")?.response.headers.get("x-request-id");
    expect(
      records.find((record) => record.request_id === forgedId && record.msg === "request refused"),
    ).toMatchObject({
      level: "debug",
      status: 401,
      code: "unauthorized",
    });
    // What the careless route logged is still there, with its credentials gone.
    const careful = records.find((record) => (record.msg as string).startsWith("forwarding with"));
    expect(careful).toMatchObject({
      msg: "forwarding with Bearer [redacted]",
      headers: {
        authorization: "[redacted]",
        cookie: "[redacted]",
        "webhook-signature": "[redacted]",
        "webhook-id": "msg_1",
      },
      upstream: { url: "https://redis.example", token: "[redacted]" },
    });
  });

  test("a caller's traceparent puts its trace id on every line of that request", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    capture.clear();
    const token = await issueToken({ sub: "bob", scopes: ["admin"], ttlSeconds: 600, secret: jwtSecret });
    const traceparent = `00-${traceId}-00f067aa0ba902b7-01`;
    const failed = await app.request("/test/boom", {
      headers: { traceparent, authorization: `Bearer ${token}` },
    });
    const refused = await app.request("/v1/counters/a", {
      headers: { traceparent, authorization: "Bearer nope-nope-nope" },
    });
    const untraced = await app.request("/healthz");
    expect([failed.status, refused.status, untraced.status]).toEqual([500, 401, 200]);

    const records = capture.records();
    for (const response of [failed, refused]) {
      const mine = records.filter((record) => record.request_id === response.headers.get("x-request-id"));
      expect(mine.length).toBeGreaterThanOrEqual(2);
      for (const record of mine) expect(record.trace_id).toBe(traceId);
    }
    const healthId = untraced.headers.get("x-request-id");
    for (const record of records.filter((r) => r.request_id === healthId))
      expect(record.trace_id).toBeUndefined();
    // A malformed traceparent is ignored, not echoed.
    capture.clear();
    await app.request("/healthz", { headers: { traceparent: "00-zzz-01" } });
    expect(capture.lines.join("\n")).not.toContain("zzz");
  });

  test("the access log can be turned off", async () => {
    const quiet = captureSink();
    const silent = createApp({ actors: host, logger: createLogger({ sink: quiet.sink }), accessLog: false });
    expect((await silent.request("/healthz")).status).toBe(200);
    expect((await silent.request("/nowhere")).status).toBe(404);
    expect(quiet.lines).toEqual([]);
  });

  test("auth failures, rate-limit denials and signature failures become bounded security events", async () => {
    recorded.length = 0;
    clock.advance(1_000);
    const forged = await issueToken({
      sub: "eve",
      scopes: ["admin"],
      ttlSeconds: 600,
      secret: "x".repeat(40),
    });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const response = await app.request("/v1/counters/a", {
        headers: { authorization: `Bearer ${forged}`, "x-test-ip": "198.51.100.7" },
      });
      statuses.push(response.status);
    }
    // Refused credentials spend the address's budget (3 a minute here): then they get 429 instead.
    expect(statuses).toEqual([401, 401, 401, ...Array(9).fill(429)]);
    for (let i = 0; i < 5; i++) {
      await app.request("/v1/counters/a", { headers: { "x-test-ip": "198.51.100.8" } });
    }
    await app.request(`${publicUrl}/_edgewise/deliver/counter/x`, { method: "POST", body: "{}" });
    await security.settled();

    const kinds = recorded.map((event) => event.kind);
    // Five per second per kind: the other seven auth failures were only counted.
    expect(kinds.filter((kind) => kind === "auth_failed")).toHaveLength(5);
    // The two anonymous denials; a refused credential over budget is reported once, as an auth failure.
    expect(kinds.filter((kind) => kind === "rate_limited")).toHaveLength(2);
    expect(kinds.filter((kind) => kind === "signature_failed")).toHaveLength(1);
    expect(security.stats().dropped.auth_failed).toBe(7);

    const failure = recorded.find((event) => event.kind === "auth_failed");
    expect(failure).toMatchObject({
      subject: "ip:198.51.100.7",
      data: {
        reason: "invalid token: bad signature",
        scheme: "bearer",
        clientIp: "198.51.100.7",
        method: "GET",
        path: "/v1/counters/a",
      },
    });
    expect(recorded.find((event) => event.kind === "rate_limited")).toMatchObject({
      subject: "ip:198.51.100.8",
      data: { routeClass: "read", clientIp: "198.51.100.8" },
    });
    expect(recorded.find((event) => event.kind === "signature_failed")).toMatchObject({
      subject: "counter/x",
      data: { target: "counter/x", reason: "missing" },
    });
    expect(JSON.stringify(recorded)).not.toContain(forged);

    // The next second, one more is recorded and says how many were dropped before it.
    clock.advance(1_000);
    await app.request("/v1/counters/a", { headers: { authorization: `Bearer ${forged}` } });
    await security.settled();
    expect(recorded.at(-1)?.data.droppedBefore).toBe(7);
  });

  test("a forged delivery's target, which its sender chose, is recorded bounded and masked, as its path is", async () => {
    recorded.length = 0;
    clock.advance(1_000);
    // A key far past any actor's (256 characters), ending in a token-shaped run; and a type as long.
    const key = `${"k".repeat(20_000)}-${upstashToken}`;
    const type = "t".repeat(20_000);
    const response = await app.request(`${publicUrl}/_edgewise/deliver/${type}/${key}`, {
      method: "POST",
      body: "{}",
    });
    expect(response.status).toBe(401);
    await security.settled();
    const [event] = recorded.filter((recorded) => recorded.kind === "signature_failed");
    expect(event?.subject.length).toBeLessThanOrEqual(256);
    expect(String(event?.data.target).length).toBeLessThanOrEqual(256);
    expect(event?.subject).toBe(String(event?.data.target));
    expect(event?.subject.startsWith("ttt")).toBe(true);
    expect(String(event?.data.path).length).toBeLessThanOrEqual(256);
    // A target within the bound keeps all of it, a token in it masked.
    recorded.length = 0;
    clock.advance(1_000);
    await app.request(`${publicUrl}/_edgewise/deliver/counter/${upstashToken}`, {
      method: "POST",
      body: "{}",
    });
    await security.settled();
    expect(recorded.find((recorded) => recorded.kind === "signature_failed")).toMatchObject({
      subject: "counter/[redacted]",
      data: { target: "counter/[redacted]", reason: "missing" },
    });
  });
});
