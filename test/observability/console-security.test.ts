// The console attacked in process: markup in everything an outsider can put on a page, where the admin token goes
// (address bar, cookie, logs), what the session cookie is and when it stops working, CSRF, framing and redirects.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ActorHost } from "../../actors/runtime/index.ts";
import { createApp } from "../../edge/app.ts";
import type { ConsoleEventLog, ConsoleLogEntry, ConsoleOptions } from "../../edge/console/index.tsx";
import { signedConsoleSessions } from "../../edge/console/signed-session.ts";
import { clientIp } from "../../edge/middleware/client-ip/index.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";

const secret = "console-security-secret-console-security";
/** Breaks out of text, of a double- or single-quoted attribute, and of an SVG <title>, if anything is not escaped. */
const payload = `"'><img src=x onerror=alert(1)><script>alert(1)</script></title><svg onload=alert(1)>`;
const topology: ConsoleOptions["topology"] = {
  actors: [{ type: "order", messages: ["Place"] }],
  consumers: [],
  subscriptions: [{ event: "OrderPlaced", actor: "order" }],
};
const token = (scopes: string[], ttlSeconds = 600) => issueToken({ sub: "op", scopes, ttlSeconds, secret });

function app(extra: Partial<ConsoleOptions> = {}, logger?: ReturnType<typeof createLogger>) {
  return createApp({
    actors: {} as unknown as ActorHost,
    auth: { secret },
    ...(logger ? { logger } : {}),
    console: { topology, breakers: () => [], ...extra },
  });
}

/** A node behind a proxy at 10.0.0.0/8 (TRUSTED_PROXIES): only that peer's forwarding headers are believed. */
const proxy = "10.0.0.7";
const client = "203.0.113.9";
function proxiedApp(extra: Partial<ConsoleOptions> = {}) {
  return createApp({
    actors: {} as unknown as ActorHost,
    auth: { secret },
    clientIp: clientIp({ platform: "bun", trustedProxies: ["10.0.0.0/8"] }),
    console: { topology, breakers: () => [], ...extra },
  });
}
type Gateway = ReturnType<typeof app>;

/** Signs in with `?token=` as a browser does: the cookie pair to send back, and the page's CSRF token. */
async function signIn(gateway: Gateway, admin: string, origin = "http://localhost") {
  const login = await gateway.request(`${origin}/_console?token=${admin}`);
  expect(login.status).toBe(303);
  const setCookie = login.headers.get("set-cookie") ?? "";
  const cookie = setCookie.split(";")[0] as string;
  const html = await (await gateway.request(`${origin}/_console`, { headers: { cookie } })).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
  return { setCookie, cookie, csrf, value: cookie.slice(cookie.indexOf("=") + 1) };
}

const form = (cookie: string, body: string, extra: Record<string, string> = {}) => ({
  method: "POST",
  headers: { cookie, "content-type": "application/x-www-form-urlencoded", ...extra },
  body,
});

/** No markup of the payload's survived: every `<` and quote it brought is text. */
function expectInert(html: string) {
  for (const raw of ["<img", "<svg onload", "<script>alert", "</title><svg", `"'>`]) {
    expect(html).not.toContain(raw);
  }
  expect(html.match(/<script\b/g)?.length).toBe(1); // console.js, nothing else
}

let broker: ReturnType<typeof Bun.serve>;
beforeAll(() => {
  // A broker whose dead letters and queues carry markup: a webhook receiver's URL and its error are outsiders'.
  broker = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/v2/queues") return Response.json([{ name: payload, lag: 1 }]);
      return Response.json({
        messages: [
          {
            dlqId: payload,
            messageId: payload,
            url: `https://hooks.example/${payload}`,
            queueName: payload,
            error: payload,
            createdAt: 1_767_000_000_000,
          },
        ],
      });
    },
  });
});
afterAll(() => broker.stop(true));

describe("markup an outsider controls is text", () => {
  test("the overview: events, security events, breakers, queues and dead letters, traces", async () => {
    const events: ConsoleEventLog = {
      latestActivity: async () => [
        {
          position: "2",
          envelope: createEnvelope({
            type: "security.auth_failed",
            source: "edgewise://gateway",
            subject: payload,
            data: { reason: payload, path: `/v1/${payload}`, client_ip: payload },
          }),
        },
        {
          position: "1",
          envelope: {
            ...createEnvelope({ type: payload, source: "edgewise://test", subject: payload, data: payload }),
            id: payload,
            time: payload,
          },
        },
      ],
      activityAfter: async () => [],
    };
    const gateway = app({
      events,
      broker: { url: `http://127.0.0.1:${broker.port}`, token: "broker-token" },
      breakers: () => [
        {
          name: `webhook:${payload}`,
          state: "open",
          failureRate: 1,
          slowRate: 0,
          calls: 1,
          consecutiveFailures: 1,
          totals: {} as never,
        },
      ],
      traces: {
        recentTraces: () => [
          { traceId: payload, name: payload, startTimeMs: 1, durationMs: 1, spanCount: 1 },
        ],
        spans: () => [],
      },
    });
    const response = await gateway.request("/_console", {
      headers: { authorization: `Bearer ${await token(["admin"])}` },
    });
    expect(response.status).toBe(200);
    const html = await response.text();
    expectInert(html);
    // Each one is there, escaped.
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    const encoded = encodeURIComponent(payload).replaceAll("'", "&#39;");
    expect(html).toContain(`href="/_console/traces/${encoded}"`);
    expect(html).toContain(`action="/_console/dlq/${encoded}/retry"`);
  });

  test("an actor page (its state, timers, inbox and outbox) and a trace's waterfall (span names, kinds, attributes)", async () => {
    const gateway = app({
      inspect: () => ({
        state: { note: payload },
        version: 1,
        inboxSize: 1,
        outboxSize: 1,
        timers: [{ id: payload, at: 1, type: payload }],
        inbox: [{ id: payload, at: 1 }],
        outbox: [{ seq: 1, type: payload, target: payload, attempts: 0, retryAt: 0 }],
      }),
      traces: {
        recentTraces: () => [],
        spans: () => [
          {
            spanId: payload,
            name: payload,
            kind: payload,
            status: payload,
            startTimeMs: 0,
            endTimeMs: 1,
            attributes: { "url.path": payload },
          },
        ],
      },
    });
    const headers = { authorization: `Bearer ${await token(["admin"])}` };
    const actor = await gateway.request("/_console/actors/order/o1", { headers });
    expect(actor.status).toBe(200);
    expectInert(await actor.text());
    // A key from the address that no actor can have is refused (400), on a page as inert.
    const refused = await gateway.request(`/_console/actors/order/${encodeURIComponent(payload)}`, {
      headers: { ...headers, accept: "text/html" },
    });
    expect(refused.status).toBe(400);
    expectInert(await refused.text());
    const trace = await gateway.request(`/_console/traces/${"ab".repeat(16)}`, { headers });
    expect(trace.status).toBe(200);
    expectInert(await trace.text());
    // A trace id that is no W3C trace id is refused (400), on a page as inert.
    const badTrace = await gateway.request(`/_console/traces/${encodeURIComponent(payload)}`, {
      headers: { ...headers, accept: "text/html" },
    });
    expect(badTrace.status).toBe(400);
    expectInert(await badTrace.text());
  });

  test("the live stream: one frame per entry, whatever newlines the data holds", async () => {
    const entries: ConsoleLogEntry[] = [];
    const gateway = app({
      events: {
        latestActivity: async () => [],
        activityAfter: async (after) => entries.filter((e) => BigInt(e.position) > BigInt(after)),
      },
      live: { intervalMs: 20, heartbeatMs: 60_000, settleMs: 100 },
    });
    const response = await gateway.request("/_console/events/stream", {
      headers: { authorization: `Bearer ${await token(["admin"])}` },
    });
    const forged = `x\n\nevent: activity\nid: 999\ndata: {"forged":true}\n\n`;
    entries.push({
      position: "1",
      envelope: createEnvelope({ type: forged, source: "edgewise://test", subject: forged, data: forged }),
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while (!text.includes("event: activity")) text += new TextDecoder().decode((await reader.read()).value);
    while (!text.endsWith("\n\n")) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text.match(/^event: /gm)).toHaveLength(1);
    expect(text.match(/^id: /gm)).toEqual(["id: "]);
    expect(text).toContain("id: 1\n");
  });

  test("the live stream is never stored: its events (customers, orders, clients' IPs) are no-store as the pages are", async () => {
    const gateway = app({
      events: { latestActivity: async () => [], activityAfter: async () => [] },
      live: { intervalMs: 20, heartbeatMs: 60_000 },
    });
    const { cookie } = await signIn(gateway, await token(["admin"]));
    const response = await gateway.request("/_console/events/stream", { headers: { cookie } });
    await response.body?.cancel();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    // `no-cache` (Hono's streamSSE default) lets a browser or a proxy keep a copy, only to revalidate it first.
    expect(response.headers.get("cache-control")).toBe("no-store");
  });
});

describe("the admin token", () => {
  test("?token= moves into a cookie at once: a 303 to the same address without it, no-store, no referrer", async () => {
    const gateway = app();
    const admin = await token(["admin"]);
    const login = await gateway.request(`/_console/traces/t1?a=1&token=${admin}&b=2`);
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/_console/traces/t1?a=1&b=2");
    expect(login.headers.get("cache-control")).toBe("no-store");
    expect(login.headers.get("referrer-policy")).toBe("no-referrer");
    const page = await gateway.request("/_console", {
      headers: { cookie: (login.headers.get("set-cookie") ?? "").split(";")[0] as string },
    });
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    expect(page.headers.get("cache-control")).toBe("no-store");
  });

  test("no redirect leaves the console's origin", async () => {
    const gateway = app();
    const admin = await token(["admin"]);
    for (const path of [
      "/_console/\\evil.example",
      "/_console/%2F%2Fevil.example",
      "/_console//evil.example",
    ]) {
      const login = await gateway.request(`http://localhost${path}?token=${admin}`);
      expect(login.headers.get("location")?.startsWith("/_console/")).toBe(true);
    }
    const bearer = { authorization: `Bearer ${admin}` };
    // The inspector form redirects only to an actor's address, which is URL-safe; anything else is refused there.
    const inspect = await gateway.request("/_console/actors?type=order&key=o-1", { headers: bearer });
    expect(inspect.headers.get("location")).toBe("/_console/actors/order/o-1");
    const evil = await gateway.request("/_console/actors?type=%2F%2Fevil.example&key=%2F%2Fx", {
      headers: bearer,
    });
    expect(evil.status).toBe(400);
    expect(evil.headers.get("location")).toBeNull();
    for (const login of ["//evil.example/_console", "///evil.example/_console"]) {
      const response = await gateway.request(`http://localhost${login}?token=${admin}`);
      expect(response.headers.get("location")).toBeNull();
    }
  });

  test("no log line carries it: the access log has the route, never the query", async () => {
    const capture = captureSink();
    const gateway = app({}, createLogger({ level: "debug", sink: capture.sink }));
    const admin = await token(["admin"]);
    const reader = await token(["orders:read"]);
    await gateway.request(`/_console?token=${admin}`);
    await gateway.request(`/_console?token=${reader}`);
    await gateway.request("/_console?token=not-a-jwt-but-secret");
    expect(capture.lines.length).toBeGreaterThanOrEqual(3);
    for (const line of capture.lines) {
      expect(line).not.toContain(admin);
      expect(line).not.toContain(reader);
      expect(line).not.toContain("not-a-jwt-but-secret");
    }
  });
});

describe("the session cookie", () => {
  test("HttpOnly, SameSite=Strict, Path=/_console; Secure over https (or behind a trusted proxy that says so)", async () => {
    const gateway = app();
    const admin = await token(["admin"]);
    const plain = await signIn(gateway, admin);
    expect(plain.setCookie).toContain("HttpOnly");
    expect(plain.setCookie).toContain("SameSite=Strict");
    expect(plain.setCookie).toContain("Path=/_console;");
    expect(plain.setCookie).not.toContain("Secure");
    expect((await signIn(gateway, admin, "https://localhost")).setCookie).toContain("Secure");
    const secureFrom = async (forwarded: Record<string, string>, peer: string) =>
      (
        (
          await proxiedApp().request(
            `/_console?token=${admin}`,
            { headers: forwarded },
            { remoteAddress: peer },
          )
        ).headers.get("set-cookie") ?? ""
      ).includes("Secure");
    // The proxy's word on the client's scheme, both ways; a client's own header is not believed.
    expect(await secureFrom({ "x-forwarded-proto": "https" }, proxy)).toBe(true);
    expect(await secureFrom({}, proxy)).toBe(false);
    expect(await secureFrom({ "x-forwarded-proto": "https" }, client)).toBe(false);
    // Nor without TRUSTED_PROXIES, whoever the peer is.
    const direct = await gateway.request(
      `/_console?token=${admin}`,
      { headers: { "x-forwarded-proto": "https" } },
      { remoteAddress: proxy },
    );
    expect(direct.headers.get("set-cookie")).not.toContain("Secure");
  });

  test("holds an opaque session id, not the admin token: a copy of it is no credential for the API", async () => {
    const gateway = app();
    const admin = await token(["admin"]);
    const session = await signIn(gateway, admin);
    expect(session.value).not.toBe(admin);
    expect(session.value).not.toContain(".");
    expect(session.value.length).toBeGreaterThanOrEqual(32);
    const asBearer = await gateway.request("/_console", {
      headers: { authorization: `Bearer ${session.value}` },
    });
    expect(asBearer.status).toBe(401);
    // The JWT put straight into the cookie opens nothing either: only a session the console made does.
    const planted = await gateway.request("/_console", { headers: { cookie: `edgewise_console=${admin}` } });
    expect(planted.status).toBe(401);
    // Two sign-ins with one token are two sessions, each with its own CSRF token.
    const again = await signIn(gateway, admin);
    expect(again.value).not.toBe(session.value);
    expect(again.csrf).not.toBe(session.csrf);
  });

  test("only the whole cookie opens its session: one that differs in either half, or in length, is refused", async () => {
    // The session is found by the cookie's first half and proven by its second, compared in constant time.
    const gateway = app();
    const { value } = await signIn(gateway, await token(["admin"]));
    const status = async (cookieValue: string) =>
      (await gateway.request("/_console", { headers: { cookie: `edgewise_console=${cookieValue}` } })).status;
    const flip = (text: string, at: number) =>
      `${text.slice(0, at)}${text[at] === "0" ? "1" : "0"}${text.slice(at + 1)}`;
    expect(value).toMatch(/^[0-9a-f]{64}$/);
    for (const wrong of [
      flip(value, 0),
      flip(value, 40),
      flip(value, 63),
      value.slice(0, 32),
      value.slice(0, 63),
      `${value}0`,
      `${value.slice(0, 32)}${"0".repeat(32)}`,
    ]) {
      expect(await status(wrong)).toBe(401);
    }
    // None of those guesses ended the session: its own cookie still opens it.
    expect(await status(value)).toBe(200);
  });

  test("signing out ends the session on the server: a copy of the cookie kept from before is refused", async () => {
    const gateway = app();
    const { cookie, csrf } = await signIn(gateway, await token(["admin"]));
    const out = await gateway.request("/_console/logout", form(cookie, `csrf=${csrf}`));
    expect(out.status).toBe(200);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    const replayed = await gateway.request("/_console", { headers: { cookie } });
    expect(replayed.status).toBe(401);
  });

  test("the cookie that clears it has its attributes: HttpOnly, SameSite=Strict, Path=/_console, Secure over https", async () => {
    // On a node (sessions held in memory) and on Workers (the cookie is the session), signed out or found ended.
    for (const gateway of [
      proxiedApp(),
      proxiedApp({ sessionStore: signedConsoleSessions({ secret }, { secret: `${secret}-console` }) }),
    ]) {
      for (const [origin, headers, peer, secure] of [
        ["http://localhost", {}, client, false],
        ["https://localhost", {}, client, true],
        ["http://localhost", { "x-forwarded-proto": "https" }, proxy, true],
        ["http://localhost", { "x-forwarded-proto": "https" }, client, false],
      ] as const) {
        const env = { remoteAddress: peer };
        const login = await gateway.request(
          `${origin}/_console?token=${await token(["admin"])}`,
          { headers },
          env,
        );
        const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
        const html = await (
          await gateway.request(`${origin}/_console`, { headers: { ...headers, cookie } }, env)
        ).text();
        const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
        const out = await gateway.request(
          `${origin}/_console/logout`,
          form(cookie, `csrf=${csrf}`, headers),
          env,
        );
        expect(out.status).toBe(200);
        // A cookie the console no longer knows is cleared the same way (the node's, after sign-out).
        const ended = await gateway.request(
          `${origin}/_console`,
          { headers: { ...headers, cookie: "edgewise_console=ended" } },
          env,
        );
        for (const cleared of [out.headers.get("set-cookie") ?? "", ended.headers.get("set-cookie") ?? ""]) {
          const attributes = cleared.split(/;\s*/).slice(1).sort();
          expect({ origin, headers, peer, attributes }).toEqual({
            origin,
            headers,
            peer,
            attributes: [
              "HttpOnly",
              "Max-Age=0",
              "Path=/_console",
              "SameSite=Strict",
              ...(secure ? ["Secure"] : []),
            ].sort(),
          });
          expect(cleared.startsWith("edgewise_console=;")).toBe(true);
        }
      }
    }
  });

  test("a session ends when its time is up on the server, whatever the browser keeps", async () => {
    // The first request must come within the session's time: 1 s, not 150 ms, for a loaded machine.
    const gateway = app({ sessions: { ttlMs: 1_000 } });
    const { cookie, setCookie } = await signIn(gateway, await token(["admin"], 3_600));
    expect(setCookie).toMatch(/Max-Age=0?[01];|Max-Age=1;/);
    expect((await gateway.request("/_console", { headers: { cookie } })).status).toBe(200);
    await Bun.sleep(1_100);
    expect((await gateway.request("/_console", { headers: { cookie } })).status).toBe(401);
  });

  test("sessions are bounded: one more sign-in ends the one unused the longest", async () => {
    const gateway = app({ sessions: { maxSessions: 2 } });
    const admin = await token(["admin"]);
    const status = async (cookie: string) =>
      (await gateway.request("/_console", { headers: { cookie } })).status;
    const [first, second] = [await signIn(gateway, admin), await signIn(gateway, admin)];
    expect(await status(first.cookie)).toBe(200); // the first is used again: the second is now the idlest
    const third = await signIn(gateway, admin);
    expect([await status(first.cookie), await status(second.cookie), await status(third.cookie)]).toEqual([
      200, 401, 200,
    ]);
  });

  test("and never outlives the token it was made from", async () => {
    const gateway = app();
    const { setCookie } = await signIn(gateway, await token(["admin"], 120));
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)?.[1]);
    expect(maxAge).toBeGreaterThan(100);
    expect(maxAge).toBeLessThanOrEqual(120);
  });

  test("a session's live stream ends when its time is up", async () => {
    const expiring = app({
      events: { latestActivity: async () => [], activityAfter: async () => [] },
      live: { intervalMs: 20, heartbeatMs: 60_000 },
      // The stream must open within the session's time: 1 s, not 300 ms, for a loaded machine.
      sessions: { ttlMs: 1_000 },
    });
    const short = await signIn(expiring, await token(["admin"]));
    const stream = await expiring.request("/_console/events/stream", { headers: { cookie: short.cookie } });
    expect(stream.status).toBe(200);
    const started = Date.now();
    expect(await stream.text()).toContain("retry: 2000");
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  test("signing out ends a session's live stream", async () => {
    const gateway = app({
      events: { latestActivity: async () => [], activityAfter: async () => [] },
      live: { intervalMs: 20, heartbeatMs: 60_000 },
    });
    const { cookie, csrf } = await signIn(gateway, await token(["admin"]));
    const stream = await gateway.request("/_console/events/stream", { headers: { cookie } });
    expect(stream.status).toBe(200);
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // retry: and the first comment
    await gateway.request("/_console/logout", form(cookie, `csrf=${csrf}`));
    const ended = await Promise.race([
      (async () => {
        for (;;) if ((await reader.read()).done) return true;
      })(),
      Bun.sleep(1_000).then(() => false),
    ]);
    await reader.cancel();
    expect(ended).toBe(true);
  });
});

describe("CSRF, framing", () => {
  test("a form needs its own session's token, from the console's origin", async () => {
    const gateway = app();
    const admin = await token(["admin"]);
    const mine = await signIn(gateway, admin);
    const theirs = await signIn(gateway, await token(["admin"]));
    const refused = [
      form(mine.cookie, ""),
      form(mine.cookie, "csrf="),
      form(mine.cookie, `csrf=${theirs.csrf}`),
      form(mine.cookie, `csrf=${mine.csrf}x`),
      form(mine.cookie, `csrf=${mine.csrf}`, { origin: "https://evil.example" }),
      // A page that sends no Origin (or `null`) is still another site's.
      form(mine.cookie, `csrf=${mine.csrf}`, { origin: "null", "sec-fetch-site": "cross-site" }),
      form(mine.cookie, `csrf=${mine.csrf}`, { "sec-fetch-site": "same-site" }),
    ];
    for (const request of refused) {
      expect((await gateway.request("/_console/logout", request)).status).toBe(403);
    }
    expect((await gateway.request("/_console", { headers: { cookie: mine.cookie } })).status).toBe(200);
    // The console's own form, as Chromium sends it from a `no-referrer` page.
    const own = form(mine.cookie, `csrf=${mine.csrf}`, { origin: "null", "sec-fetch-site": "same-origin" });
    expect((await gateway.request("/_console/logout", own)).status).toBe(200);
  });

  test("a dead-letter form is checked for its CSRF token before its id: a forged one with a bad id is 403, not 400", async () => {
    const gateway = app({ broker: { url: `http://127.0.0.1:${broker.port}`, token: "broker-token" } });
    const mine = await signIn(gateway, await token(["admin"]));
    for (const path of [
      "/_console/dlq/multi/retry",
      "/_console/dlq/bad%20id/delete",
      "/_console/dlq/retry/delete",
    ]) {
      for (const accept of ["text/html", "application/json"]) {
        for (const body of ["", "csrf=forged"]) {
          const forged = await gateway.request(path, form(mine.cookie, body, { accept }));
          expect(forged.status).toBe(403);
        }
        // With the session's own token, the id's rule answers.
        expect((await gateway.request(path, form(mine.cookie, `csrf=${mine.csrf}`, { accept }))).status).toBe(
          400,
        );
      }
    }
  });

  test("its pages are for its own origin (CORP same-origin); its static files and the API keep same-site", async () => {
    const gateway = app();
    const admin = { authorization: `Bearer ${await token(["admin"])}`, accept: "text/html" };
    const signIn = `/_console?token=${await token(["admin"])}`;
    const pages: Array<[string, RequestInit, number]> = [
      ["/_console", { headers: admin }, 200],
      ["/_console?then=1", { headers: admin }, 400],
      ["/_console/actors/order/x", { headers: admin }, 404],
      ["/_console", { headers: { accept: "text/html" } }, 401],
      [
        "/_console",
        { headers: { authorization: `Bearer ${await token(["orders:read"])}`, accept: "text/html" } },
        403,
      ],
      ["/_console/logout", { method: "POST", headers: admin }, 200],
      [signIn, { headers: { accept: "text/html", "sec-fetch-site": "cross-site" } }, 200],
    ];
    for (const [path, init, status] of pages) {
      const response = await gateway.request(path, init);
      expect({ path, status: response.status, type: response.headers.get("content-type") }).toEqual({
        path,
        status,
        type: "text/html; charset=UTF-8",
      });
      expect({ path, corp: response.headers.get("cross-origin-resource-policy") }).toEqual({
        path,
        corp: "same-origin",
      });
    }
    for (const [path, init] of [
      ["/_console/static/console.js", {}],
      ["/_console/static/console.css", {}],
      ["/healthz", {}],
      // The console's refusals to a client that takes no HTML are the API's problem+json.
      ["/_console?then=1", { headers: { authorization: admin.authorization } }],
      ["/_console", {}],
    ] as const) {
      const response = await gateway.request(path, init);
      expect({ path, corp: response.headers.get("cross-origin-resource-policy") }).toEqual({
        path,
        corp: "same-site",
      });
    }
  });

  test("nothing frames the console, and its CSP allows no inline script", async () => {
    const gateway = app();
    // As a browser asks: a client that does not take HTML gets problem+json for a missing page, under the API's CSP.
    for (const path of ["/_console", "/_console/actors/order/x"]) {
      const response = await gateway.request(path, {
        headers: { authorization: `Bearer ${await token(["admin"])}`, accept: "text/html" },
      });
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      const policy = response.headers.get("content-security-policy") ?? "";
      expect(policy).toContain("frame-ancestors 'none'");
      expect(policy).toContain("script-src 'self'");
      expect(policy).not.toContain("unsafe");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });
});
