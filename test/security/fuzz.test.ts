// Property-based fuzzing of every endpoint of a real node: no input gets a 5xx, and no rejected request changes state.
//
// The node is the reference system on the Bun host (`startCommerceNode`: real Postgres, the embedded broker, the
// local actor host), reached over HTTP. The endpoints come from its own `GET /openapi.json` (each operation gets an
// arbitrary built from its parameter and body schemas, so a route added later is fuzzed without touching this file;
// a schema the generator cannot read fails the suite) plus the gateway's routes outside it (health, metrics, the
// signed internal endpoints, API keys, the console), a stray-route generator and raw request targets; a route the
// gateway's source registers (`app.get("/…")` under edge/) without an arbitrary fails the suite too. A third of the
// requests are valid in every part (an honest client: ids that exist, a credential that may pass), half are valid
// but for one part, the rest fuzzed throughout. Fuzzed parts: bodies with fields broken (wrong types, boundary
// numbers, NUL, unicode, `__proto__` keys, extra fields), JSON text tricks, random bytes and content types, hostile
// path and query values (traversal, `%00`, overlong UTF-8, very long), odd headers (Idempotency-Key,
// X-Forwarded-For, …), credentials none, garbage, forged or expired, and signatures (deliveries, actor-host asks,
// inbound webhooks) missing, forged, stale or for another URL. Ids are drawn from what exists when a request is sent.
// A validly signed delivery or actor-host body is always malformed somewhere: well-formed ones are the system's own
// traffic, where a 5xx is how a handler asks the broker for a retry.
//
// Property 1: no response is a 5xx (or no response at all). Property 2: a rejected request (4xx) changes no state,
// and neither does a GET of any status. State is a fingerprint of every table in the node's Postgres schema (count
// and a sum of hashes of each row version's ctid and xmin, so any insert, update or delete shows: ledger, read
// model, activity log, API keys, webhooks, the broker's messages, dead letters and dedup ids) and of the actor
// store (state, kv, timers, inbox, outbox). Security events and console sign-ins in the activity log are left out:
// recording a refusal, or who opened a console session, is their point. Accepted requests change state, and keep changing it through the queue, so the check is made only
// against a quiescent system: before each request the fingerprint must equal the last settled one (else the run
// waits for quiescence, and a change found then after a rejected request is that request's failure), and a few
// milliseconds after a rejected request the system must be idle with that same fingerprint. Quiescent means nothing
// queued anywhere (broker messages, billing's outbox, actor outboxes and mailboxes) and the same state and delivery
// count on two reads. Requests run one at a time.
//
// Also checked: no accepted request sets off a delivery that fails further in (the broker logging a retry or a dead
// letter: a 4xx or 5xx inside the system; this found orders accepted for customer "." that could never settle), and
// nothing pollutes Object.prototype in this process, where the node runs. Responses Bun's HTTP server makes before
// any app code runs (a request line it cannot parse: 400, 431, 505, or a closed connection) count as refusals, not
// as the app's 5xx; they are printed apart as `runtime`.
//
// Runs: SECURITY_FUZZ_RUNS (default 2000, what CI runs; more for a longer hunt); seed: SECURITY_FUZZ_SEED (the
// default is printed at start). A failure prints the shrunk request, the seed and the path (SECURITY_FUZZ_PATH
// replays it); SECURITY_FUZZ_SHRINK=0 stops at the first failure. See test/security/README.md.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import fc from "fast-check";
import { SignJWT } from "jose";
import { generateSecret } from "../../actors/commerce/webhooks/secret.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk } from "../commerce/client.ts";
import {
  bodyHints,
  describeRequest,
  type EndpointSpec,
  type FuzzContext,
  type FuzzRequest,
  gatewayEndpoints,
  type Outcome,
  openApiEndpoints,
  rawEndpoint,
  send,
  strayEndpoint,
} from "./fuzz-endpoints.ts";
import { changedParts, describeChange, type Snapshot, StateProbe, sameState } from "./fuzz-state.ts";
import { attackCategory } from "./report.ts";
import { customerScopes } from "./support.ts";

const RUNS = Number(process.env.SECURITY_FUZZ_RUNS || 2_000);
const SEED = Number(process.env.SECURITY_FUZZ_SEED || 20_261_108);
const fuzz = attackCategory("fuzz");

const repoRoot = join(import.meta.dir, "..", "..");
let running: CommerceNode;
let receiver: ReturnType<typeof startReceiver>;
let probe: StateProbe;
let ctx: FuzzContext;
let specs: EndpointSpec[] = [];
let openApiIds: string[] = [];
const logs: string[] = [];

beforeAll(async () => {
  receiver = startReceiver((delivery) =>
    delivery.path.startsWith("/dead") ? new Response("no", { status: 400 }) : new Response("ok"),
  );
  const inboundSecret = generateSecret();
  const actorHostSecret = `ahs-${crypto.randomUUID()}${crypto.randomUUID()}`;
  const metricsToken = `metrics-${crypto.randomUUID()}`;
  running = await startCommerceNode(
    "security_fuzz",
    {
      INBOUND_WEBHOOK_SECRETS: `supplier=${inboundSecret}`,
      ACTOR_HOST_SECRET: actorHostSecret,
      METRICS_TOKEN: metricsToken,
      TRUSTED_PROXIES: "127.0.0.1",
    },
    {
      log: (line) => {
        logs.push(line);
        if (logs.length > 200) logs.shift();
      },
    },
  );
  const { client, node, jwtSecret } = running;
  const broker = node.broker;
  if (!broker) throw new Error("fuzz: the node has no embedded broker");

  // What exists before the first generated request: skus, funded accounts, settled orders, a subscription,
  // API keys (one revoked), a counter, a dead letter.
  const skus = ["sku-a", "sku-b", "sku-c"];
  for (const [i, sku] of skus.entries()) await client.putSku(sku, 1_000_000, 100 * (i + 1));
  for (const customer of ["alice", "bob"]) await client.putAccount(customer, 1_000_000_000);
  const orders: string[] = [];
  for (const [customer, sku] of [
    ["alice", "sku-a"],
    ["alice", "sku-b"],
    ["bob", "sku-c"],
  ] as const) {
    const placed = expectOk(await client.place(customer, [{ sku, quantity: 1 }]));
    orders.push(placed.orderId);
  }
  for (const orderId of orders) await client.settle(orderId);
  expectOk(await client.cancel(orders[0] as string));
  const subscription = expectOk(
    await client.call<{ id: string }>("POST", "/v1/webhooks/subscriptions", {
      body: { url: receiver.url("/hook"), events: ["order.confirmed", "order.rejected", "order.cancelled"] },
    }),
  );
  const apiKey = async (sub: string, scopes: string[]) =>
    expectOk(
      await client.call<{ id: string; key: string }>("POST", "/v1/api-keys", { body: { sub, scopes } }),
    );
  const adminKey = await apiKey("admin", ["admin"]);
  const aliceKey = await apiKey("alice", ["orders:read", "orders:write", "billing:read", "loyalty:read"]);
  const revokedKey = await apiKey("alice", ["orders:read"]);
  expect((await client.call("DELETE", `/v1/api-keys/${revokedKey.id}`)).status).toBe(204);
  expectOk(await client.call("POST", "/v1/counters/c1/increment", { body: {} }));
  const dead = await fetch(`${broker.url}/v2/publish/${receiver.url("/dead")}`, {
    method: "POST",
    headers: { authorization: `Bearer ${broker.token}`, "upstash-retries": "0" },
    body: "{}",
  });
  expect(dead.status).toBe(201);

  // Credentials, by the labels the arbitraries draw.
  const key = new TextEncoder().encode(jwtSecret);
  const now = Math.floor(Date.now() / 1000);
  const jwt = (sub: string, scopes: string[]) =>
    issueToken({ sub, scopes, ttlSeconds: 3_600, secret: jwtSecret });
  const customer = customerScopes;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const admin = await jwt("admin", ["admin"]);
  const alice = await jwt("alice", customer);
  const credentials: FuzzContext["credentials"] = {
    none: { headers: {}, sub: "carol" },
    "jwt:admin": { headers: bearer(admin), sub: "admin" },
    "jwt:alice": { headers: bearer(alice), sub: "alice" },
    "jwt:bob": { headers: bearer(await jwt("bob", customer)), sub: "bob" },
    "jwt:alice-read": { headers: bearer(await jwt("alice", ["orders:read"])), sub: "alice" },
    "jwt:inventory": { headers: bearer(await jwt("ops", ["inventory:read", "inventory:write"])), sub: "ops" },
    "jwt:webhooks": { headers: bearer(await jwt("hooks", ["webhooks:admin"])), sub: "hooks" },
    "jwt:noscope": { headers: bearer(await jwt("carol", [])), sub: "carol" },
    "jwt:expired": {
      headers: bearer(
        await issueToken({
          sub: "admin",
          scopes: ["admin"],
          ttlSeconds: 60,
          secret: jwtSecret,
          now: Date.now() - 7_200_000,
        }),
      ),
      sub: "admin",
    },
    "jwt:wrong-key": {
      headers: bearer(
        await issueToken({ sub: "admin", scopes: ["admin"], ttlSeconds: 3_600, secret: "k".repeat(64) }),
      ),
      sub: "admin",
    },
    "jwt:alg-none": {
      headers: bearer(
        `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "admin", scope: "admin", exp: now + 3_600 })}.`,
      ),
      sub: "admin",
    },
    "jwt:no-exp": {
      headers: bearer(
        await new SignJWT({ scope: "admin" })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject("admin")
          .setIssuedAt()
          .sign(key),
      ),
      sub: "admin",
    },
    "jwt:scope-array": {
      headers: bearer(
        await new SignJWT({ scope: ["admin"] })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject("alice")
          .setIssuedAt()
          .setExpirationTime(now + 3_600)
          .sign(key),
      ),
      sub: "alice",
    },
    "jwt:weird-sub": { headers: bearer(await jwt("*", customer)), sub: "*" },
    "jwt:huge": { headers: bearer(await jwt("alice", Array(600).fill("orders:read"))), sub: "alice" },
    "apikey:admin": { headers: { "x-api-key": adminKey.key }, sub: "admin" },
    "apikey:alice": { headers: { "x-api-key": aliceKey.key }, sub: "alice" },
    "apikey:revoked": { headers: { "x-api-key": revokedKey.key }, sub: "alice" },
    "apikey:malformed": { headers: { "x-api-key": "ew_notakey" }, sub: "carol" },
    basic: { headers: { authorization: `Basic ${btoa("admin:admin")}` }, sub: "admin" },
    "bearer-empty": { headers: { authorization: "Bearer " }, sub: "carol" },
    both: { headers: { ...bearer(alice), "x-api-key": adminKey.key }, sub: "alice" },
    metrics: { headers: bearer(metricsToken), sub: "carol" },
    "metrics-wrong": { headers: bearer(`${metricsToken}x`), sub: "carol" },
    // Filled in below by a sign-in: the cookie holds a session id. A JWT planted in it is no session (alice's).
    "cookie:admin": { headers: {}, sub: "admin" },
    "cookie:alice": { headers: { cookie: `edgewise_console=${alice}` }, sub: "alice" },
    "cookie:garbage": { headers: { cookie: "edgewise_console=garbage; other=1" }, sub: "carol" },
  };

  const csrf = await consoleSignIn(node.url, admin, credentials);

  ctx = {
    base: node.url,
    publicUrl: node.publicUrl,
    port: node.port,
    credentials,
    pools: {
      order: orders,
      sku: [...skus],
      customer: ["alice", "bob"],
      subscription: [subscription.id],
      // Not the fixture keys the credentials use: a valid DELETE would revoke them for the rest of the run.
      apikey: [revokedKey.id],
      counter: ["c1"],
      source: ["supplier"],
      trace: [],
      actorType: ["order", "inventory", "loyalty", "counter"],
    },
    inbound: { source: "supplier", secret: inboundSecret },
    broker: { currentSigningKey: broker.currentSigningKey, nextSigningKey: broker.nextSigningKey },
    actorHostSecret,
    csrf,
    usedWebhookIds: [],
    dlqIds: async () =>
      (await node.sql<Array<{ dlq_id: string }>>`SELECT dlq_id FROM qstash_dlq ORDER BY seq LIMIT 5`).map(
        (row) => row.dlq_id,
      ),
  };

  const document = (await (await fetch(`${node.url}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, never>>;
  };
  openApiIds = Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
  );
  const hints = bodyHints(receiver.url("/hook"));
  const documented = openApiEndpoints(document, hints);
  const gateway = gatewayEndpoints(hints);
  specs = [
    ...documented,
    ...gateway,
    strayEndpoint([...documented, ...gateway].map((spec) => spec.template)),
    rawEndpoint,
  ];

  probe = new StateProbe(running, [receiver.url("/dead")]);
  await probe.init();
  await waitForDeadLetter();
}, 60_000);

afterAll(async () => {
  probe?.close();
  await running?.stop();
  receiver?.stop();
});

/** Opens a console session with `?token=`: its cookie becomes `cookie:admin`, and its CSRF token is returned. */
async function consoleSignIn(
  base: string,
  admin: string,
  credentials: FuzzContext["credentials"],
): Promise<string> {
  const login = await fetch(`${base}/_console?token=${admin}`, { redirect: "manual" });
  const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
  credentials["cookie:admin"] = { headers: { cookie }, sub: "admin" };
  const page = await (await fetch(`${base}/_console`, { headers: { cookie } })).text();
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(page)?.[1];
  if (!csrf) throw new Error("fuzz: no CSRF token on the console page");
  return csrf;
}

async function waitForDeadLetter(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await ctx.dlqIds()).length === 0) {
    if (Date.now() > deadline) throw new Error("fuzz: the fixture dead letter never arrived");
    await Bun.sleep(20);
  }
}

test("every operation in openapi.json, and every route the gateway registers, has an arbitrary", async () => {
  const ids = new Set(specs.map((spec) => spec.id));
  expect(openApiIds.length).toBeGreaterThan(10);
  expect(openApiIds.filter((id) => !ids.has(id))).toEqual([]);
  // Every route the gateway's source registers, documented or not: a route added without an arbitrary fails here.
  const registered = new Set<string>();
  for (const file of new Bun.Glob("edge/**/*.{ts,tsx}").scanSync({ cwd: repoRoot })) {
    if (file.endsWith(".test.ts") || file.endsWith(".test.tsx")) continue;
    const source = await Bun.file(join(repoRoot, file)).text();
    for (const match of source.matchAll(/\bapp\.(get|post|put|delete|patch)\(\s*"(\/[^"]*)"/g)) {
      registered.add(
        `${(match[1] as string).toUpperCase()} ${(match[2] as string).replaceAll(/:(\w+)/g, "{$1}")}`,
      );
    }
  }
  expect(registered.size).toBeGreaterThan(20);
  expect([...registered].filter((id) => !ids.has(id)).sort()).toEqual([]);
  // The gateway's own routes exist (a stale list here would fuzz 404s only).
  for (const spec of specs.filter((s) => s.source === "gateway" && s.template !== "*")) {
    const path = spec.template.replaceAll(/\{[^}]+\}/g, "x");
    const response = await fetch(`${ctx.base}${path}`, { method: spec.method, redirect: "manual" });
    const text = await response.text();
    expect({ route: spec.id, unrouted: text.includes("no route for") }).toEqual({
      route: spec.id,
      unrouted: false,
    });
  }
});

test("the state fingerprint sees a write to Postgres and to an actor, and no security event", async () => {
  const { client } = running;
  const start = await probe.settle();
  expectOk(await client.call("PUT", "/v1/accounts/probe-customer", { body: { balanceCents: 1 } }));
  const ledger = await probe.settle();
  expect(changedParts(start, ledger)).toContain("pg:billing_accounts");
  expectOk(await client.call("POST", "/v1/counters/probe-counter/increment", { body: {} }));
  const actor = await probe.settle();
  expect(changedParts(ledger, actor)).toEqual(["actors:actor_state", "actors:inbox"]);
  // A refused token is recorded as a security event in the activity log, after the response: not state.
  const securityEvents = async () =>
    Number(
      (
        await running.node.sql<Array<{ n: number }>>`
        SELECT count(*)::int AS n FROM activity_log WHERE type LIKE 'security.%'`
      )[0]?.n,
    );
  const recorded = await securityEvents();
  const refused = await fetch(`${ctx.base}/v1/orders`, { headers: { authorization: "Bearer forged" } });
  expect(refused.status).toBe(401);
  await eventually(async () => (await securityEvents()) > recorded, "the security event");
  expect(changedParts(actor, await probe.settle())).toEqual([]);
});

interface Tally {
  total: number;
  byClass: Record<string, number>;
}

test(
  `fuzz: ${RUNS} generated requests, no 5xx, no state change on a rejected request`,
  async () => {
    console.log(
      `[fuzz] seed ${SEED}, ${RUNS} runs, ${specs.length} endpoints (SECURITY_FUZZ_SEED, SECURITY_FUZZ_RUNS to change)`,
    );
    const started = performance.now();
    const perEndpoint = new Map<string, Tally>();
    const overall: Record<string, number> = {};
    const statuses: Record<string, number> = {};
    let sent = 0;
    let settledAfterAccepted = 0;
    const slowSettles: string[] = [];
    let baseline: Snapshot = await probe.settle();
    let previous: { request: FuzzRequest; outcome: Outcome; mustNotChange: boolean } | undefined;
    const prototypes = () =>
      [Object.prototype, Array.prototype, Function.prototype, String.prototype]
        .map((proto) => Object.getOwnPropertyNames(proto).length)
        .join(",");
    const cleanPrototypes = prototypes();

    const property = fc.asyncProperty(
      fc.oneof(...specs.map((spec) => spec.arbitrary)),
      async (request: FuzzRequest) => {
        // Quiescent before: the state is the one last settled, or the previous request changed it late.
        const before = await probe.snapshot();
        if (!before.idle || !sameState(before, baseline)) {
          const late = previous?.mustNotChange ? describeChange(baseline, before) : "";
          try {
            baseline = await probe.settle();
          } catch (error) {
            if (!previous) throw error;
            fuzz.tried(
              `${previous.request.endpoint} → ${previous.outcome.status}, then a failed delivery`,
              false,
            );
            fail(previous.request, previous.outcome, `after the response: ${String(error)}`);
          }
          if (late && previous) {
            fuzz.tried(
              `${previous.request.endpoint} → ${previous.outcome.status}, then a late change`,
              false,
            );
            fail(previous.request, previous.outcome, `state changed after the response: ${late}`);
          }
        }

        const outcome = await send(ctx, request);
        sent++;
        // Signing out ends the console session on the server: sign in again, so later requests have one.
        if (request.endpoint === "POST /_console/logout" && outcome.status === 200) {
          const admin = (ctx.credentials["jwt:admin"]?.headers.authorization ?? "").slice("Bearer ".length);
          ctx.csrf = await consoleSignIn(ctx.base, admin, ctx.credentials);
        }
        const status = outcome.status;
        // Bun's HTTP parser answering before the app ran (400, 431, 505 for a request line it cannot read) or
        // closing the connection is a refusal. Any other answer without the app's X-Request-Id (a 500 from a throw
        // that escaped the app) is not excused.
        const byRuntime =
          outcome.origin === "runtime" && (status === 0 || (status >= 400 && status < 500) || status === 505);
        const rejected = byRuntime || (status >= 400 && status < 500);
        const read = request.method === "GET" || request.method === "HEAD";
        const mustNotChange = rejected || read;
        const statusClass = byRuntime ? "runtime" : status < 0 ? "none" : `${Math.floor(status / 100)}xx`;
        const tally = perEndpoint.get(request.endpoint) ?? { total: 0, byClass: {} };
        tally.total++;
        tally.byClass[statusClass] = (tally.byClass[statusClass] ?? 0) + 1;
        perEndpoint.set(request.endpoint, tally);
        overall[statusClass] = (overall[statusClass] ?? 0) + 1;
        const label = byRuntime ? `runtime ${status}` : String(status);
        statuses[label] = (statuses[label] ?? 0) + 1;

        let change = "";
        if (mustNotChange) {
          // A few milliseconds for anything the request set off without awaiting it. The next run's first read
          // is a second look, and a change found there is still this request's.
          await Bun.sleep(4);
          const after = await probe.snapshot();
          let settled = after;
          if (!after.idle || after.failedDeliveries !== baseline.failedDeliveries) {
            try {
              settled = await probe.settle();
            } catch (error) {
              fuzz.tried(`${request.endpoint} → ${status}, then a failed delivery`, false);
              fail(request, outcome, String(error));
            }
          }
          change = describeChange(baseline, after) || describeChange(baseline, settled);
          baseline = settled;
        } else {
          await adopt(request, outcome);
          const waited = performance.now();
          try {
            baseline = await probe.settle();
          } catch (error) {
            fuzz.tried(`${request.endpoint} → ${status}, then a failed delivery`, false);
            fail(request, outcome, String(error));
          }
          settledAfterAccepted++;
          const ms = performance.now() - waited;
          if (ms > 1_000)
            slowSettles.push(`${Math.round(ms)} ms after ${describeRequest(request, outcome).slice(0, 300)}`);
        }
        previous = { request, outcome, mustNotChange };

        const polluted = prototypes() !== cleanPrototypes || "admin" in {} || "polluted" in {};
        const serverError = outcome.origin === "client" || (!byRuntime && status >= 500);
        fuzz.tried(`${request.endpoint} → ${label}`, !serverError && !change && !polluted);
        if (serverError) fail(request, outcome, status < 0 ? "got no response" : `answered ${status}`);
        if (change)
          fail(
            request,
            outcome,
            `${read && !rejected ? "a read" : "a rejected request"} changed state: ${change}`,
          );
        if (polluted) fail(request, outcome, "Object.prototype (or another builtin prototype) was polluted");
      },
    );

    try {
      await fc.assert(property, {
        numRuns: RUNS,
        seed: SEED,
        endOnFailure: process.env.SECURITY_FUZZ_SHRINK === "0",
        ...(process.env.SECURITY_FUZZ_PATH ? { path: process.env.SECURITY_FUZZ_PATH } : {}),
      });
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const rows = [...perEndpoint.entries()].sort(([a], [b]) => a.localeCompare(b));
      console.log(
        `[fuzz] ${sent} requests in ${seconds.toFixed(1)} s: ${JSON.stringify(overall)}; accepted (2xx/3xx) ${
          (overall["2xx"] ?? 0) + (overall["3xx"] ?? 0)
        }, rejected (4xx, or by Bun's HTTP server before the app) ${(overall["4xx"] ?? 0) + (overall.runtime ?? 0)}; settled after ${settledAfterAccepted} state-changing requests`,
      );
      console.log(`[fuzz] statuses: ${JSON.stringify(Object.fromEntries(Object.entries(statuses).sort()))}`);
      const { snapshots, snapshotMs, settles, settleMs } = probe.stats;
      console.log(
        `[fuzz] state checks: ${snapshots} snapshots (${(snapshotMs / Math.max(1, snapshots)).toFixed(1)} ms each), ${settles} waits for quiescence (${(settleMs / 1000).toFixed(1)} s in all)`,
      );
      // Deliveries the broker had to retry or dead-letter during the run: a 5xx inside the system, not in a response.
      const failedDeliveries = await running.node.sql<
        Array<{ path: string; state: string; status: number | null; n: number; error: string | null }>
      >`
        SELECT regexp_replace(url, '^https?://[^/]+', '') AS path, state, response_status AS status,
               count(*)::int AS n, max(error) AS error
        FROM qstash_events WHERE state IN ('ERROR', 'RETRY', 'FAILED')
        GROUP BY 1, 2, 3 ORDER BY n DESC LIMIT 20`;
      console.log(
        `[fuzz] deliveries retried or failed inside the system: ${JSON.stringify(failedDeliveries)}`,
      );
      if (slowSettles.length > 0)
        console.log(`[fuzz] slow to settle:\n  ${slowSettles.slice(0, 10).join("\n  ")}`);
      for (const [id, tally] of rows) {
        console.log(
          `[fuzz]   ${String(tally.total).padStart(4)}  ${id.padEnd(42)} ${JSON.stringify(tally.byClass)}`,
        );
      }
    }
    if (RUNS >= specs.length * 20) {
      expect(specs.map((spec) => spec.id).filter((id) => !perEndpoint.has(id))).toEqual([]);
    }
  },
  Math.max(120_000, RUNS * 300),
);

function fail(request: FuzzRequest, outcome: Outcome, why: string): never {
  const recent = logs
    .filter((line) => /"level":"(error|warn)"/.test(line))
    .slice(-3)
    .map((line) => line.slice(0, 600));
  throw new Error(
    [
      `${why} (seed ${SEED})`,
      `request: ${describeRequest(request, outcome)}`,
      `response: ${outcome.status} ${outcome.text.slice(0, 500)}`,
      recent.length ? `node log:\n  ${recent.join("\n  ")}` : "",
    ]
      .filter(Boolean)
      .join("\n"),
  );
}

/** What an accepted request made exists now: its ids join the pools; a webhook aimed elsewhere is removed. */
async function adopt(request: FuzzRequest, outcome: Outcome): Promise<void> {
  const body = (outcome.json ?? {}) as Record<string, unknown>;
  const add = (pool: string, value: unknown, cap = 40) => {
    const list = ctx.pools[pool] ?? [];
    if (typeof value === "string" && !list.includes(value) && list.length < cap) list.push(value);
    ctx.pools[pool] = list;
  };
  switch (request.endpoint) {
    case "POST /v1/orders":
      add("order", body.orderId, 200);
      break;
    case "PUT /v1/inventory/{sku}":
      add("sku", body.sku);
      break;
    case "PUT /v1/accounts/{customerId}":
      add("customer", body.customerId);
      break;
    case "POST /v1/api-keys":
      add("apikey", body.id);
      break;
    case "POST /v1/webhooks/subscriptions": {
      const keep =
        typeof body.url === "string" &&
        body.url.startsWith(receiver.url("/")) &&
        (ctx.pools.subscription?.length ?? 0) < 4;
      // A URL nobody answers would keep its deliveries retrying for minutes, and the queue from ever settling.
      if (!keep && typeof body.id === "string") {
        const admin = ctx.credentials["jwt:admin"]?.headers ?? {};
        await fetch(`${ctx.base}/v1/webhooks/subscriptions/${body.id}`, { method: "DELETE", headers: admin });
      } else add("subscription", body.id);
      break;
    }
  }
}
