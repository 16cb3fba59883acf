// The console without a browser: who gets in, the headers it sends, the trace waterfall from a traces port, and
// the live event stream (Server-Sent Events over an activity log in memory).
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import type { ActorHost } from "../../actors/runtime/index.ts";
import { createApp } from "../../edge/app.ts";
import type {
  ConsoleEventLog,
  ConsoleLogEntry,
  ConsoleOptions,
  ConsoleSpan,
} from "../../edge/console/index.tsx";
import { consoleTraces } from "../../deploy/tracing.ts";
import { localInspector } from "../../edge/console/local.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { nodeDependencyPolicies } from "../../deploy/node.ts";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { Dependencies } from "../../shared/resilience/index.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import { TraceStore } from "../../shared/telemetry/trace/store.ts";

const secret = "console-test-secret-console-test-secret";
const topology: ConsoleOptions["topology"] = {
  actors: [
    { type: "order", messages: ["Place"] },
    { type: "inventory", messages: ["Put"] },
  ],
  consumers: ["readside"],
  subscriptions: [
    { event: "OrderPlaced", actor: "inventory" },
    { event: "OrderPlaced", actor: "readside" },
  ],
};
const t0 = 1_767_000_000_000;
const spans: ConsoleSpan[] = [
  { spanId: "a", name: "POST /v1/orders", kind: "SERVER", startTimeMs: t0, endTimeMs: t0 + 40 },
  { spanId: "b", parentSpanId: "a", name: "order turn", startTimeMs: t0 + 5, endTimeMs: t0 + 15 },
  {
    spanId: "c",
    parentSpanId: "b",
    name: "publish OrderPlaced",
    kind: "PRODUCER",
    startTimeMs: t0 + 12,
    endTimeMs: t0 + 14,
  },
  {
    spanId: "d",
    parentSpanId: "a",
    name: "billing",
    status: "ERROR",
    startTimeMs: t0 + 20,
    endTimeMs: t0 + 38,
  },
];

function app(extra: Partial<ConsoleOptions> = {}) {
  return createApp({
    actors: {} as unknown as ActorHost,
    auth: { secret },
    console: { topology, breakers: () => [], ...extra },
  });
}
const token = (scopes: string[]) => issueToken({ sub: "op", scopes, ttlSeconds: 600, secret });

describe("console access", () => {
  test("401 without a token, 403 without admin, 401 for a bad cookie", async () => {
    const gateway = app();
    // A browser gets the sign-in page; any other client a problem+json, as every error of the API.
    const browser = { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" };
    const anonymous = await gateway.request("/_console", { headers: browser });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toContain("text/html");
    for (const accept of [undefined, "*/*", "application/json"]) {
      const refused = await gateway.request("/_console", accept ? { headers: { accept } } : {});
      expect(refused.status).toBe(401);
      expect(refused.headers.get("content-type")).toBe("application/problem+json");
      expect(refused.headers.get("www-authenticate")).toContain("Bearer");
      expect(((await refused.json()) as { code: string }).code).toBe("unauthorized");
    }
    const reader = await token(["orders:read"]);
    const asReader = { authorization: `Bearer ${reader}` };
    const forbiddenPage = await gateway.request("/_console", { headers: { ...asReader, ...browser } });
    expect(forbiddenPage.status).toBe(403);
    expect(forbiddenPage.headers.get("content-type")).toContain("text/html");
    const forbidden = await gateway.request("/_console", { headers: asReader });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get("content-type")).toBe("application/problem+json");
    const forged = await gateway.request("/_console", { headers: { cookie: "edgewise_console=not-a-jwt" } });
    expect(forged.status).toBe(401);
    expect(forged.headers.get("set-cookie")).toContain("edgewise_console=;");
  });

  test("?token= sets an HttpOnly SameSite=Strict cookie and redirects without the token", async () => {
    const gateway = app();
    const admin = await token(["admin"]);
    const login = await gateway.request(`/_console/actors/order/x?token=${admin}&a=1`);
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/_console/actors/order/x?a=1");
    const cookie = login.headers.get("set-cookie") ?? "";
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/_console");
    const page = await gateway.request("/_console", { headers: { cookie: cookie.split(";")[0] as string } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("content-security-policy")).not.toContain("unsafe-inline");
    const html = await page.text();
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).not.toContain("<script>");
    expect(html).toContain('name="csrf"');
  });

  test("?notice= shows only the console's own notices: a name Object has (constructor, toString) shows nothing", async () => {
    const gateway = app();
    const admin = { authorization: `Bearer ${await token(["admin"])}` };
    const known = await gateway.request("/_console?notice=purged", { headers: admin });
    expect(await known.text()).toContain("Every dead letter was deleted.");
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const page = await gateway.request(`/_console?notice=${name}`, { headers: admin });
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).not.toContain("notice-bar");
      expect(html).not.toContain("[native code]");
    }
  });

  test("the static script and styles need no token; the API keeps its strict CSP", async () => {
    const gateway = app();
    const script = await gateway.request("/_console/static/console.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("text/javascript");
    const health = await gateway.request("/healthz");
    expect(health.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});

describe("traces", () => {
  // W3C trace ids, as the route takes (test/observability/console-params.test.ts refuses the others).
  const traceOne = "4bf92f3577b34da6a3ce929d0e0e4736";
  const noSuchTrace = "0af7651916cd43dd8448eb211c80319c";
  test("without a traces port: tracing not configured", async () => {
    const admin = await token(["admin"]);
    const html = await (
      await app().request("/_console", { headers: { authorization: `Bearer ${admin}` } })
    ).text();
    expect(html).toContain("tracing not configured");
  });

  test("with one: recent traces, and each as a waterfall in tree order", async () => {
    const gateway = app({
      traces: {
        recentTraces: () => [
          { traceId: traceOne, name: "POST /v1/orders", startTimeMs: t0, durationMs: 40, spanCount: 4 },
        ],
        spans: (traceId) => (traceId === traceOne ? spans : []),
      },
    });
    const headers = { authorization: `Bearer ${await token(["admin"])}` };
    const overview = await (await gateway.request("/_console", { headers })).text();
    expect(overview).toContain(`href="/_console/traces/${traceOne}"`);
    const waterfall = await gateway.request(`/_console/traces/${traceOne}`, { headers });
    expect(waterfall.status).toBe(200);
    const svg = await waterfall.text();
    const order = [...svg.matchAll(/data-span-id="(\w)"/g)].map((m) => m[1]);
    expect(order).toEqual(["a", "b", "c", "d"]);
    expect(svg).toContain("#d9534f"); // the failed span
    expect((await gateway.request(`/_console/traces/${noSuchTrace}`, { headers })).status).toBe(404);
  });

  test("a page that is not there is HTML for a browser and problem+json for any other client", async () => {
    const headers = { authorization: `Bearer ${await token(["admin"])}` };
    const browser = { ...headers, accept: "text/html" };
    const withTraces = app({ traces: { recentTraces: () => [], spans: () => [] } });
    for (const [gateway, path] of [
      [withTraces, `/_console/traces/${noSuchTrace}`],
      [app(), `/_console/traces/${noSuchTrace}`],
      [app(), "/_console/actors/order/o1"],
    ] as const) {
      const page = await gateway.request(path, { headers: browser });
      expect(page.status).toBe(404);
      expect(page.headers.get("content-type")).toContain("text/html");
      const api = await gateway.request(path, { headers });
      expect({ path, status: api.status, type: api.headers.get("content-type") }).toEqual({
        path,
        status: 404,
        type: "application/problem+json",
      });
      expect((await api.json()) as { status: number; code: string }).toMatchObject({
        status: 404,
        code: "not_found",
      });
    }
  });
});

describe("a trace store that cannot be read", () => {
  test("a trace's page is 503 'Trace store unreachable' (page or problem+json), logged at warn, not as a bug", async () => {
    // The node's own store and adapter (deploy/tracing.ts) on a SQLite file, closed as when tracing stops.
    const store = new TraceStore(
      openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-traces-")), "traces.db")),
    );
    const capture = captureSink();
    const gateway = createApp({
      actors: {} as unknown as ActorHost,
      auth: { secret },
      logger: createLogger({ level: "debug", sink: capture.sink }),
      console: { topology, breakers: () => [], traces: consoleTraces(store) },
    });
    const headers = { authorization: `Bearer ${await token(["admin"])}` };
    const path = `/_console/traces/${"ab".repeat(16)}`;
    expect((await gateway.request(path, { headers })).status).toBe(404); // readable: no such trace
    store.close();
    const api = await gateway.request(path, { headers });
    expect(api.status).toBe(503);
    expect(api.headers.get("content-type")).toBe("application/problem+json");
    const problem = (await api.json()) as { code: string; detail: string };
    expect(problem).toMatchObject({ code: "unavailable" });
    expect(problem.detail).toContain("the trace store cannot be read");
    const browser = await gateway.request(path, { headers: { ...headers, accept: "text/html" } });
    expect(browser.status).toBe(503);
    expect(browser.headers.get("content-type")).toContain("text/html");
    expect(await browser.text()).toContain("<h1>Trace store unreachable</h1>");
    // The overview renders, and its traces section says the store could not be read (not "no traces yet").
    const overview = await (await gateway.request("/_console", { headers })).text();
    expect(overview).toContain("The trace store could not be read");
    expect(overview).not.toContain("no traces recorded yet");
    // Both failures logged as a dependency down (warn), neither as an internal bug (error).
    const records = capture.records();
    expect(records.filter((record) => record.level === "error")).toEqual([]);
    const warned = records.filter(
      (record) =>
        record.level === "warn" &&
        String((record.error as { message?: string } | undefined)?.message).includes("trace store"),
    );
    expect(warned.length).toBe(2);
  });
});

describe("the actor inspector", () => {
  /** A local host on its own SQLite file, inspected as a node's console does (its snapshot plus the file's rows). */
  const inspected = async () => {
    const file = join(mkdtempSync(join(tmpdir(), "edgewise-inspector-")), "actors.db");
    const db = openBunSqlite(file);
    const host = new LocalActorHost({ actors: [counterActor], db });
    await host.ask({ type: "counter", key: "c1" }, "Increment", { by: 3 });
    const inspector = localInspector((address) => host.inspect(address), db);
    /** Every address the console asked the host about. */
    const asked: string[] = [];
    const gateway = app({
      topology: { actors: [{ type: "counter", messages: ["Increment"] }], consumers: [], subscriptions: [] },
      inspect: (address) => {
        asked.push(`${address.type}/${address.key}`);
        return inspector(address);
      },
    });
    return { file, host, gateway, asked };
  };
  /** Runs `use` against a fresh inspector and its host, and stops the host afterwards. */
  const inspecting = async (use: (fixture: Awaited<ReturnType<typeof inspected>>) => Promise<void>) => {
    const fixture = await inspected();
    try {
      await use(fixture);
    } finally {
      await fixture.host.stop();
    }
  };
  const headers = async () => ({ authorization: `Bearer ${await token(["admin"])}` });
  /** The answer to a browser and to any other client: status, the page's heading, the problem's code and detail. */
  const both = async (gateway: ReturnType<typeof app>, path: string) => {
    const api = await gateway.request(path, { headers: await headers() });
    const problem = (await api.json()) as { code: string; detail: string };
    const browser = await gateway.request(path, { headers: { ...(await headers()), accept: "text/html" } });
    const html = await browser.text();
    expect(api.headers.get("content-type")).toBe("application/problem+json");
    expect(browser.headers.get("content-type")).toContain("text/html");
    return {
      api: { status: api.status, code: problem.code, detail: problem.detail },
      page: { status: browser.status, title: /<h1>([^<]*)<\/h1>/.exec(html)?.[1], html },
    };
  };

  test("an actor that exists is shown; one never seen is 404 'No such actor'", async () => {
    await inspecting(async ({ gateway }) => {
      const page = await gateway.request("/_console/actors/counter/c1", { headers: await headers() });
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain("version 1");
      // The inspector form above it keeps the actor's address, to look at another key of the same type.
      expect(html).toContain('<input name="key" value="c1" required');
      expect(html).toMatch(/<option value="counter" selected/);
      const { api, page: missing } = await both(gateway, "/_console/actors/counter/never-seen");
      expect(api).toMatchObject({ status: 404, code: "not_found" });
      expect(api.detail).toContain("There is no actor counter/never-seen");
      expect(missing).toMatchObject({ status: 404, title: "No such actor" });
    });
  });

  test("an actor type that does not exist is 404 'No such actor type', naming the types there are", async () => {
    await inspecting(async ({ gateway }) => {
      const { api, page } = await both(gateway, "/_console/actors/nosuchtype/c1");
      expect(api).toMatchObject({ status: 404, code: "actor.unknown_type" });
      expect(api.detail).toBe('No actor type "nosuchtype" is registered here: the types here are counter');
      expect(page).toMatchObject({ status: 404, title: "No such actor type" });
    });
  });

  test("a malformed or oversized type or key is 400 before any host is asked: problem+json, or a page for a browser", async () => {
    await inspecting(async ({ gateway, host, asked }) => {
      const active = host.stats().activeActors;
      const longType = "t".repeat(5_000);
      for (const [path, field] of [
        [`/_console/actors/counter/${encodeURIComponent("a b")}`, "key"],
        [`/_console/actors/counter/${"k".repeat(257)}`, "key"],
        ["/_console/actors/counter/%FF", "key"],
        [`/_console/actors/${longType}/c1`, "type"],
        ["/_console/actors/Counter/c1", "type"],
        [`/_console/actors/${encodeURIComponent("<b>x</b>")}/c1`, "type"],
      ] as const) {
        const { api, page } = await both(gateway, path);
        expect({ path, ...api }).toMatchObject({ path, status: 400, code: "request.invalid" });
        expect(api.detail).toStartWith(`param is invalid (${field}: `);
        expect(page).toMatchObject({ status: 400, title: "Invalid actor address" });
        expect(page.html).not.toContain(longType);
        expect(page.html).not.toContain("<b>x</b>");
      }
      const { api } = await both(gateway, `/_console/actors/counter/${encodeURIComponent("a b")}`);
      expect(api.detail).toContain("URL-safe characters");
      // No host was asked about any of them, and no actor activated.
      expect(asked).toEqual([]);
      expect(host.stats().activeActors).toBe(active);
      // A well-formed address still is.
      expect((await both(gateway, "/_console/actors/counter/never-seen")).api.status).toBe(404);
      expect(asked).toEqual(["counter/never-seen", "counter/never-seen"]);
    });
  });

  test("a store that cannot be read is 503 'Actor store unreachable', not 'No such actor'", async () => {
    await inspecting(async ({ file, gateway }) => {
      // The host's SQLite fails for real: its state table is gone (a botched restore or migration).
      const other = new Database(file);
      other.exec("DROP TABLE actor_state");
      other.close();
      const { api, page } = await both(gateway, "/_console/actors/counter/c1");
      expect(api).toMatchObject({ status: 503, code: "unavailable" });
      expect(api.detail).toContain("the actor counter/c1 cannot be read");
      expect(page).toMatchObject({ status: 503, title: "Actor store unreachable" });
      expect(page.html).toContain("Breakers section");
    });
    // A port that fails the same way, whatever it throws.
    const failing = app({ inspect: () => Promise.reject(new Error("gone")) });
    expect((await both(failing, "/_console/actors/order/o1")).api).toMatchObject({
      status: 503,
      code: "unavailable",
    });
  });
});

describe("a broker that answers 5xx", () => {
  // A broker port that fails as QStash does in an incident: every call answers 503.
  const failing = () => {
    const calls: string[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (request) => {
        calls.push(`${request.method} ${new URL(request.url).pathname}`);
        return new Response("upstream unavailable", { status: 503 });
      },
    });
    return { calls, url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
  };

  test("the forms answer 503: a console page for a browser, problem+json `unavailable` otherwise", async () => {
    const broker = failing();
    try {
      const gateway = app({ broker: { url: broker.url, token: "t" } });
      const headers = { authorization: `Bearer ${await token(["admin"])}` };
      for (const path of ["/_console/dlq/dlq_1/retry", "/_console/dlq/dlq_1/delete", "/_console/dlq/purge"]) {
        const api = await gateway.request(path, { method: "POST", headers });
        expect(api.status).toBe(503);
        expect(api.headers.get("content-type")).toBe("application/problem+json");
        const problem = (await api.json()) as { code: string; detail: string };
        expect(problem.code).toBe("unavailable");
        expect(problem.detail).toContain("answered 503");
        const browser = await gateway.request(path, {
          method: "POST",
          headers: { ...headers, accept: "text/html" },
        });
        expect(browser.status).toBe(503);
        expect(browser.headers.get("content-type")).toContain("text/html");
        expect(browser.headers.get("content-security-policy")).toContain("script-src 'self'");
        const html = await browser.text();
        expect(html).toContain("<h1>Broker unreachable</h1>");
        // It may have reached the broker: the page does not claim nothing changed.
        expect(html).toContain("cannot tell whether the change was made");
      }
      expect(broker.calls).toContain("POST /v2/dlq/retry/dlq_1");
    } finally {
      broker.stop();
    }
  });

  test("the overview renders, and its queue section says the broker is unreachable, not that it is empty", async () => {
    const broker = failing();
    try {
      const gateway = app({ broker: { url: broker.url, token: "t" } });
      const page = await gateway.request("/_console", {
        headers: { authorization: `Bearer ${await token(["admin"])}` },
      });
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain("Queue unreachable: the broker (the message queue) answered 503");
      expect(html).not.toContain("the dead-letter queue is empty");
      expect(html).not.toContain('id="dlq-table"');
      expect(html).toContain('id="topology-diagram"');
    } finally {
      broker.stop();
    }
  });
});

describe("the node's broker breaker", () => {
  /** A broker that answers every call with `status`, recording the calls that reach it. */
  const answering = (status: number) => {
    const calls: string[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (request) => {
        calls.push(`${request.method} ${new URL(request.url).pathname}`);
        return Response.json({ error: "x" }, { status });
      },
    });
    return { calls, url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
  };
  /** The console as a node mounts it: its broker calls go through the node's `broker` breaker. */
  const guarded = (url: string) => {
    const dependencies = new Dependencies({ policies: nodeDependencyPolicies });
    const gateway = app({
      broker: { url, token: "t", guard: (call, signal) => dependencies.call("broker", call, signal) },
      breakers: () => dependencies.snapshots(),
    });
    return { dependencies, gateway };
  };

  test("a failing broker opens it; then each form answers 503 at once, without calling the broker", async () => {
    const broker = answering(503);
    try {
      const { dependencies, gateway } = guarded(broker.url);
      const headers = { authorization: `Bearer ${await token(["admin"])}` };
      for (let i = 0; i < 5; i++) {
        const answer = await gateway.request("/_console/dlq/dlq_1/retry", { method: "POST", headers });
        expect(answer.status).toBe(503);
        expect(((await answer.json()) as { detail: string }).detail).toContain("answered 503");
      }
      expect(broker.calls.length).toBe(5);
      expect(dependencies.state("broker")).toBe("open");
      const api = await gateway.request("/_console/dlq/dlq_1/delete", { method: "POST", headers });
      expect(api.status).toBe(503);
      expect(api.headers.get("retry-after")).toMatch(/^\d+$/);
      const problem = (await api.json()) as { code: string; detail: string };
      expect(problem.code).toBe("unavailable");
      expect(problem.detail).toContain("circuit breaker is open");
      expect(problem.detail).toContain("nothing was changed");
      const page = await gateway.request("/_console/dlq/purge", {
        method: "POST",
        headers: { ...headers, accept: "text/html" },
      });
      expect(page.status).toBe(503);
      expect(page.headers.get("retry-after")).toMatch(/^\d+$/);
      const html = await page.text();
      expect(html).toContain("<h1>Broker unreachable</h1>");
      expect(html).toContain("circuit breaker is open");
      const overview = await (await gateway.request("/_console", { headers })).text();
      expect(overview).toContain("Queue unreachable: the broker (the message queue) is not called while");
      // None of those reached the broker.
      expect(broker.calls.length).toBe(5);
    } finally {
      broker.stop();
    }
  });

  test("a 4xx (a dead letter deleted meanwhile) is the broker answering: it never opens the breaker", async () => {
    const broker = answering(404);
    try {
      const { dependencies, gateway } = guarded(broker.url);
      const headers = { authorization: `Bearer ${await token(["admin"])}` };
      for (let i = 0; i < 8; i++) {
        const answer = await gateway.request("/_console/dlq/dlq_gone/delete", { method: "POST", headers });
        expect(answer.status).toBe(303);
        expect(answer.headers.get("location")).toBe("/_console?notice=failed#queues");
      }
      expect(broker.calls.length).toBe(8);
      expect(dependencies.state("broker")).toBe("closed");
      const [snapshot] = dependencies.snapshots();
      expect(snapshot?.name).toBe("broker");
      expect(snapshot?.totals.success).toBe(8);
      expect(snapshot?.totals.failure).toBe(0);
    } finally {
      broker.stop();
    }
  });
});

describe("the dead-letter table", () => {
  const origin = "https://node.example";
  const letters = [
    {
      dlqId: "dlq_hook",
      messageId: "m1",
      url: `${origin}/_edgewise/deliver/webhooks/whsub_0123456789abcdef`,
      body: JSON.stringify(
        createEnvelope({
          type: "WebhookDelivery",
          source: "edgewise://test",
          target: "webhooks/whsub_0123456789abcdef",
          data: {},
        }),
      ),
      responseStatus: 502,
    },
    {
      dlqId: "dlq_order",
      messageId: "m2",
      url: `${origin}/_edgewise/deliver/order/o-1`,
      body: JSON.stringify(
        createEnvelope({ type: "Refund", source: "edgewise://test", target: "order/o-1", data: {} }),
      ),
    },
  ];
  const broker = () => {
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (request) =>
        new URL(request.url).pathname === "/v2/dlq"
          ? Response.json({ messages: letters })
          : Response.json([]),
    });
    return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
  };
  const overview = async (describeTarget: ConsoleOptions["describeTarget"]) => {
    const running = broker();
    try {
      const gateway = app({
        broker: { url: running.url, token: "t" },
        ...(describeTarget ? { describeTarget } : {}),
      });
      const page = await gateway.request("/_console", {
        headers: { authorization: `Bearer ${await token(["admin"])}` },
      });
      expect(page.status).toBe(200);
      return await page.text();
    } finally {
      running.stop();
    }
  };

  test("each target as its owner describes it, with credentials in its URL masked; the message type", async () => {
    const asked: string[] = [];
    const html = await overview(async (target) => {
      asked.push(`${target.type}/${target.key}`);
      return target.type === "webhooks"
        ? {
            label: `webhook subscription ${target.key}`,
            url: "https://hook-user:s3cret-password@hooks.example/in?token=abcDEF0123456789abcDEF0123456789abcDEF0123",
          }
        : undefined;
    });
    expect(asked.sort()).toEqual(["order/o-1", "webhooks/whsub_0123456789abcdef"]);
    expect(html).toContain("webhook subscription whsub_0123456789abcdef");
    expect(html).toContain("hooks.example/in");
    expect(html).not.toContain("s3cret-password");
    expect(html).not.toContain("abcDEF0123456789abcDEF0123456789abcDEF0123");
    expect(html).toContain('<td class="message">WebhookDelivery</td>');
    // Not described: the actor's address, and its message type.
    expect(html).toMatch(/<div class="what"><div class="mono">order\/o-1<\/div><\/div>/);
    expect(html).toContain('<td class="message">Refund</td>');
    // The delivery URL stays, for debugging.
    expect(html).toContain(`title="${origin}/_edgewise/deliver/order/o-1"`);
  });

  test("a describer that fails (its store down) leaves the page, and the address", async () => {
    const html = await overview(() => Promise.reject(new Error("postgres down")));
    expect(html).toContain("webhooks/whsub_0123456789abcdef");
    expect(html).toContain("its details could not be read");
    expect(html).toContain('<td class="message">Refund</td>');
  });
});

/** An activity log in memory: positions taken in order, made visible on append (or later, like a slow commit). */
class MemoryLog implements ConsoleEventLog {
  private visible: ConsoleLogEntry[] = [];
  private nextPosition = 1;
  /** Calls of `activityAfter`: the live tail's queries. */
  tailQueries = 0;

  append(type: string, data: unknown = {}): ConsoleLogEntry {
    return this.commit(this.reserve(), type, data);
  }
  /** Takes a position that becomes visible only when committed (or never: a duplicate insert's). */
  reserve(): number {
    return this.nextPosition++;
  }
  commit(position: number, type: string, data: unknown = {}): ConsoleLogEntry {
    const entry = {
      position: String(position),
      envelope: createEnvelope({ type, source: "edgewise://test", subject: `s-${position}`, data }),
    };
    this.visible.push(entry);
    this.visible.sort((a, b) => Number(a.position) - Number(b.position));
    return entry;
  }
  async latestActivity(limit: number) {
    return [...this.visible].reverse().slice(0, limit);
  }
  /** While set, the log cannot be read (a database that is down). */
  failing: Error | undefined;
  async activityAfter(position: string, limit: number) {
    this.tailQueries++;
    if (this.failing) throw this.failing;
    return this.visible.filter((e) => BigInt(e.position) > BigInt(position)).slice(0, limit);
  }
}

interface Frame {
  event?: string;
  id?: string;
  data?: string;
  comment?: string;
  retry?: string;
}

/** Reads an SSE response in the background, frame by frame. */
function frames(response: Response) {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const received: Frame[] = [];
  let buffer = "";
  let ended = false;
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const frame: Frame = {};
        for (const line of buffer.slice(0, end).split("\n")) {
          if (line.startsWith(":")) frame.comment = line.slice(1).trim();
          else {
            const colon = line.indexOf(":");
            const field = line.slice(0, colon) as keyof Frame;
            const value = line.slice(colon + 1).replace(/^ /, "");
            frame[field] = field === "data" && frame.data !== undefined ? `${frame.data}\n${value}` : value;
          }
        }
        received.push(frame);
        buffer = buffer.slice(end + 2);
      }
    }
  })()
    .catch(() => {})
    .finally(() => {
      ended = true;
    });
  const activity = () => received.filter((f) => f.event === "activity");
  return {
    received,
    activity,
    ids: () => activity().map((f) => f.id),
    get ended() {
      return ended;
    },
    async until(check: () => boolean, what: string, ms = 3_000) {
      const deadline = Date.now() + ms;
      while (!check()) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}: ${JSON.stringify(received)}`);
        await Bun.sleep(10);
      }
    },
    async close() {
      await reader.cancel().catch(() => {});
      await pump;
    },
  };
}

const fast = { intervalMs: 20, heartbeatMs: 60_000, settleMs: 200 };

describe("the live event stream", () => {
  const setup = async (live: ConsoleOptions["live"] = fast, signal?: AbortSignal) => {
    const log = new MemoryLog();
    const gateway = app({ events: log, live, ...(signal ? { signal } : {}) });
    const headers = { authorization: `Bearer ${await token(["admin"])}` };
    const open = async (extra: Record<string, string> = {}, query = "") => {
      const response = await gateway.request(`/_console/events/stream${query}`, {
        headers: { ...headers, ...extra },
      });
      return { response, stream: frames(response) };
    };
    return { log, gateway, headers, open };
  };

  test("a log that cannot be read is reported once per outage; the stream stays open and resumes after it", async () => {
    const errors: unknown[] = [];
    const { log, open } = await setup({ ...fast, onError: (error) => errors.push(error) });
    const { stream } = await open();
    try {
      log.failing = new Error("connection refused (test)");
      const queries = log.tailQueries;
      while (log.tailQueries < queries + 4) await Bun.sleep(10);
      expect(errors).toHaveLength(1);
      expect(String(errors[0])).toContain("connection refused");
      log.failing = undefined;
      const appended = log.append("OrderPlaced");
      await stream.until(() => stream.ids().includes(appended.position), "the event after the outage");
      expect(stream.ended).toBe(false);
      log.failing = new Error("down again (test)");
      const again = log.tailQueries;
      while (log.tailQueries < again + 2) await Bun.sleep(10);
      expect(errors).toHaveLength(2); // a new outage is reported again
    } finally {
      log.failing = undefined;
      await stream.close();
    }
  });

  test("sends each event appended after connect, as an `activity` frame with the log position as its id", async () => {
    const { log, open } = await setup();
    log.append("OrderPlaced");
    const { response, stream } = await open();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    expect(response.headers.get("cache-control")).toBe("no-store");
    try {
      const placed = log.append("OrderConfirmed", { orderId: "o-1", note: "<script>alert(1)</script>" });
      const refused = log.append("security.auth_failed", { reason: "expired" });
      await stream.until(() => stream.activity().length === 2, "two frames");
      expect(stream.received[0]?.retry).toBe("2000");
      // Only what came after the connection; the data is the envelope as JSON, nothing escaped for HTML.
      expect(stream.ids()).toEqual([placed.position, refused.position]);
      const [first, second] = stream.activity().map((f) => JSON.parse(f.data as string));
      expect(first).toEqual(JSON.parse(JSON.stringify(placed.envelope)));
      expect(first.data.note).toBe("<script>alert(1)</script>");
      expect(stream.activity()[0]?.data).toContain("<script>");
      expect(second.type).toBe("security.auth_failed");
    } finally {
      await stream.close();
    }
  });

  test("Last-Event-ID resumes right after that event: no gap, no duplicate", async () => {
    const { log, open } = await setup();
    for (let i = 0; i < 3; i++) log.append("Before");
    const first = await open();
    for (let i = 0; i < 3; i++) log.append("Seen");
    await first.stream.until(() => first.stream.activity().length === 3, "three frames");
    const seen = first.stream.ids();
    await first.stream.close();
    // Appended while the client is away; then it comes back with the last id it got.
    const missed = [log.append("Missed"), log.append("Missed")].map((e) => e.position);
    const again = await open({ "last-event-id": seen.at(-1) as string });
    try {
      const later = log.append("Later").position;
      await again.stream.until(() => again.stream.activity().length === 3, "the missed and the new");
      expect(again.stream.ids()).toEqual([...missed, later]);
      expect(new Set([...seen, ...again.stream.ids()]).size).toBe(6);
    } finally {
      await again.stream.close();
    }
  });

  test("a resume from before the tail's buffer reads its own way forward; ?after= works like Last-Event-ID", async () => {
    const { log, open } = await setup();
    const old = Array.from({ length: 5 }, () => log.append("Old").position);
    const live = await open();
    const fromTwo = await open({ "last-event-id": old[1] as string }, `?after=${old[3]}`);
    const fromQuery = await open({}, `?after=${old[3]}`);
    try {
      const next = log.append("New").position;
      await fromTwo.stream.until(() => fromTwo.stream.activity().length === 4, "the catch-up and the new");
      await fromQuery.stream.until(() => fromQuery.stream.activity().length === 2, "after the fourth");
      await live.stream.until(() => live.stream.activity().length === 1, "the new one");
      // The header wins over the query (an EventSource reconnecting keeps the URL it was opened with).
      expect(fromTwo.stream.ids()).toEqual([old[2], old[3], old[4], next]);
      expect(fromQuery.stream.ids()).toEqual([old[4], next]);
      expect(live.stream.ids()).toEqual([next]);
    } finally {
      await Promise.all([live, fromTwo, fromQuery].map((s) => s.stream.close()));
    }
  });

  test("a position taken before a visible one is waited for (a slow commit), then skipped once settled", async () => {
    // A manual clock: in real time, a test stalled past settleMs (200 ms) on a loaded machine saw the hole settle
    // before the slow commit, and Quick sent alone.
    const clock = new ManualClock();
    const { log, open } = await setup({ ...fast, clock });
    const { stream } = await open();
    try {
      const slow = log.reserve();
      const quick = log.append("Quick").position;
      const queries = log.tailQueries;
      while (log.tailQueries < queries + 2) await Bun.sleep(10); // the tail has seen the hole
      expect(stream.ids()).toEqual([]); // held behind the hole
      const late = log.commit(slow, "Late").position;
      await stream.until(() => stream.activity().length === 2, "both, in log order");
      expect(stream.ids()).toEqual([late, quick]);
      log.reserve(); // never committed: a duplicate insert's position
      const after = log.append("After").position;
      const seen = log.tailQueries;
      while (log.tailQueries < seen + 2) await Bun.sleep(10); // the tail has seen this hole too
      expect(stream.ids()).toEqual([late, quick]);
      clock.advance(fast.settleMs);
      await stream.until(() => stream.activity().length === 3, "the entry after a hole that stays");
      expect(stream.ids().at(-1)).toBe(after);
    } finally {
      await stream.close();
    }
  });

  test("a hole seen just before the wall clock steps back an hour settles after settleMs, not after the hour", async () => {
    const clock = new ManualClock();
    const { log, open } = await setup({ ...fast, clock });
    const { stream } = await open();
    try {
      log.reserve(); // never committed: a duplicate insert's position
      const after = log.append("After").position;
      const queries = log.tailQueries;
      while (log.tailQueries < queries + 2) await Bun.sleep(10); // the tail has seen the hole
      expect(stream.ids()).toEqual([]);
      clock.step(-3_600_000);
      clock.advance(fast.settleMs);
      await stream.until(() => stream.activity().length === 1, "the entry after the settled hole");
      expect(stream.ids()).toEqual([after]);
    } finally {
      await stream.close();
    }
  });

  test("the first stream from the end still gets an entry whose commit lands after it opened, below the newest one", async () => {
    // A manual clock: in real time, a test stalled past settleMs (200 ms) before the commit saw the hole settle.
    const clock = new ManualClock();
    const { log, open } = await setup({ ...fast, clock });
    const slow = log.reserve(); // taken first, committed last (a slow transaction)
    log.append("Before"); // the newest visible entry when the stream opens: the stream starts after it
    const { stream } = await open();
    try {
      const queries = log.tailQueries;
      while (log.tailQueries < queries + 2) await Bun.sleep(10); // the tail has run past the hole
      const late = log.commit(slow, "Late").position;
      const after = log.append("After").position;
      await stream.until(() => stream.activity().length === 2, "the late commit and the entry after it");
      // In log order, and without the entry that was already there when the stream opened.
      expect(stream.ids()).toEqual([late, after]);
    } finally {
      await stream.close();
    }
  });

  test("holes that stay empty when the first stream opens (duplicate inserts') hold it once, until they settle together", async () => {
    // One settle against four: 1 s against 4 s, so a loaded machine's stalls stay well inside the bound.
    const settleMs = 1_000;
    const { log, open } = await setup({ ...fast, settleMs });
    const before: string[] = [];
    for (let i = 0; i < 4; i++) {
      log.reserve(); // never committed
      before.push(log.append(`Before${i}`).position);
    }
    const started = Date.now();
    const { stream } = await open();
    try {
      const after = log.append("After").position;
      await stream.until(() => stream.activity().length === 1, "the entry after the settled holes", 10_000);
      // Four holes settled one after another would hold it four times as long.
      expect(Date.now() - started).toBeLessThan(3 * settleMs);
      expect(stream.ids()).toEqual([after]);
      for (const position of before) expect(stream.ids()).not.toContain(position);
    } finally {
      await stream.close();
    }
  });

  test("holes that appear together while streaming settle together, so the stream never falls a settle behind per hole", async () => {
    // One settle against four: 1 s against 4 s, so a loaded machine's stalls stay well inside the bound.
    const settleMs = 1_000;
    const { log, open } = await setup({ ...fast, settleMs });
    const { stream } = await open();
    try {
      await Bun.sleep(60);
      const appended: string[] = [];
      const started = Date.now();
      for (let i = 0; i < 4; i++) {
        log.reserve(); // a duplicate insert's position, never committed
        appended.push(log.append(`Entry${i}`).position);
      }
      await stream.until(() => stream.activity().length === 4, "the four entries past their holes", 10_000);
      expect(Date.now() - started).toBeLessThan(3 * settleMs);
      expect(stream.ids()).toEqual(appended);
    } finally {
      await stream.close();
    }
  });

  test("one query per interval for all streams, none when nobody watches; heartbeats while idle", async () => {
    const { log, open } = await setup({ ...fast, intervalMs: 50, heartbeatMs: 80 });
    const opened = Date.now();
    const streams = await Promise.all(Array.from({ length: 5 }, () => open()));
    await Bun.sleep(520);
    // Five streams for ~10 intervals: one tail, not five. The bound counts the intervals that passed, which on a
    // loaded machine may be more than 520 ms' worth.
    const intervals = (Date.now() - opened) / 50;
    expect(log.tailQueries).toBeGreaterThan(3);
    expect(log.tailQueries).toBeLessThan(Math.max(16, 1.5 * intervals + 1));
    for (const { stream } of streams)
      expect(stream.received.some((f) => f.comment === "heartbeat")).toBe(true);
    await Promise.all(streams.map(({ stream }) => stream.close()));
    await Bun.sleep(120);
    const idle = log.tailQueries;
    await Bun.sleep(200);
    expect(log.tailQueries).toBe(idle);
  });

  test("without an admin: the same 401 and 403 pages as the rest of the console; a bad Last-Event-ID is 400", async () => {
    const { gateway, headers } = await setup();
    const anonymous = await gateway.request("/_console/events/stream", { headers: { accept: "text/html" } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toContain("text/html");
    expect(anonymous.headers.get("www-authenticate")).toContain("edgewise-console");
    expect(await anonymous.text()).toContain("The console needs an admin token.");
    const reader = await token(["orders:read"]);
    const forbidden = await gateway.request("/_console/events/stream", {
      headers: { authorization: `Bearer ${reader}` },
    });
    expect(forbidden.status).toBe(403);
    const forged = await gateway.request("/_console/events/stream", {
      headers: { cookie: "edgewise_console=not-a-jwt" },
    });
    expect(forged.status).toBe(401);
    const bad = await gateway.request("/_console/events/stream", {
      headers: { ...headers, "last-event-id": "1; DROP TABLE" },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("application/problem+json");
    const none = await app().request("/_console/events/stream", { headers });
    expect(none.status).toBe(404);
  });

  test("the admin cookie opens the stream, as EventSource sends it", async () => {
    const { gateway } = await setup();
    const login = await gateway.request(`/_console?token=${await token(["admin"])}`);
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const response = await gateway.request("/_console/events/stream", { headers: { cookie } });
    expect(response.status).toBe(200);
    await frames(response).close();
  });

  test("past the stream limit: 503 problem+json with Retry-After; a closed stream frees its place", async () => {
    const { open, gateway, headers } = await setup({ ...fast, maxStreams: 2 });
    const [a, b] = [await open(), await open()];
    const third = await gateway.request("/_console/events/stream", { headers });
    expect(third.status).toBe(503);
    expect(third.headers.get("content-type")).toContain("application/problem+json");
    expect(third.headers.get("retry-after")).toBe("10");
    expect(((await third.json()) as { detail?: string }).detail).toContain("at most 2");
    await a.stream.close();
    const fourth = await open();
    expect(fourth.response.status).toBe(200);
    await Promise.all([b.stream.close(), fourth.stream.close()]);
  });

  test("the node shutting down ends every stream and admits no new one", async () => {
    const shutdown = new AbortController();
    const { open, gateway, headers } = await setup(fast, shutdown.signal);
    const { stream } = await open();
    await stream.until(() => stream.received.length > 0, "the first frame");
    shutdown.abort();
    await stream.until(() => stream.ended, "the end of the stream");
    expect((await gateway.request("/_console/events/stream", { headers })).status).toBe(503);
  });

  test("over a real socket: a client that goes away frees its place", async () => {
    const { log, gateway, headers } = await setup({ ...fast, maxStreams: 1 });
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (request) => gateway.fetch(request) });
    try {
      const url = `http://127.0.0.1:${server.port}/_console/events/stream`;
      const first = await fetch(url, { headers });
      const stream = frames(first);
      const entry = log.append("OverTheWire");
      await stream.until(() => stream.ids().includes(entry.position), "the frame over HTTP");
      expect((await fetch(url, { headers })).status).toBe(503);
      await stream.close();
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        const again = await fetch(url, { headers });
        status = again.status;
        if (status === 200) await frames(again).close();
        else {
          await again.body?.cancel();
          await Bun.sleep(20);
        }
      }
      expect(status).toBe(200);
    } finally {
      await server.stop(true);
    }
  });

  test("the page: rows rendered on the server, where the stream starts, and still no inline script", async () => {
    const { log, gateway, headers } = await setup();
    log.append("OrderPlaced", { orderId: "<b>o-9</b>" });
    const newest = log.append("OrderConfirmed");
    const html = await (await gateway.request("/_console", { headers })).text();
    expect(html).toContain('data-stream="/_console/events/stream"');
    expect(html).toContain(`data-after="${newest.position}"`);
    expect(html).toContain('id="events-status"');
    expect(html).toContain("&lt;b&gt;o-9&lt;/b&gt;");
    expect(html).not.toContain("<script>");
    const script = await (await gateway.request("/_console/static/console.js")).text();
    expect(script).toContain("new EventSource(");
    expect(script).toContain("textContent");
    expect(script).not.toContain("innerHTML");
  });
});
