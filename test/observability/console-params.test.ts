// The console's path parameters and queries: each checked by its rule before anything is asked (the trace store, the
// broker, the actor host, the activity log), refused as 400 request.invalid naming it, and each valid one served.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { ActivityLog } from "../../actors/commerce/projections/activity-log.ts";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import type { ActorHost } from "../../actors/runtime/index.ts";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { newDlqId } from "../../deploy/local/broker/ingest.ts";
import { consoleTraces } from "../../deploy/tracing.ts";
import { createApp } from "../../edge/app.ts";
import type { ConsoleOptions } from "../../edge/console/index.tsx";
import { localInspector } from "../../edge/console/local.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { TraceStore } from "../../shared/telemetry/trace/store.ts";
import {
  call,
  dropSchema,
  sdkFor,
  startReceiver,
  startTestBroker,
  TEST_DATABASE_URL,
  uniqueSchema,
  waitFor,
} from "../broker/helpers.ts";

const secret = "console-params-secret-console-params-secret";
const topology: ConsoleOptions["topology"] = {
  actors: [{ type: "counter", messages: ["Increment", "Get"] }],
  consumers: [],
  subscriptions: [],
};
const app = (extra: Partial<ConsoleOptions> = {}) =>
  createApp({
    actors: {} as unknown as ActorHost,
    auth: { secret },
    console: { topology, breakers: () => [], live: { intervalMs: 20, heartbeatMs: 60_000 }, ...extra },
  });
const admin = async () => ({
  authorization: `Bearer ${await issueToken({ sub: "op", scopes: ["admin"], ttlSeconds: 600, secret })}`,
});

/** The answer to any other client (problem+json) and to a browser (a console page), for one request. */
async function both(gateway: ReturnType<typeof app>, path: string, init: RequestInit = {}) {
  const headers = await admin();
  const api = await gateway.request(path, { ...init, headers: { ...headers, ...init.headers } });
  const apiType = api.headers.get("content-type");
  const problem =
    apiType === "application/problem+json" ? ((await api.json()) as Record<string, unknown>) : {};
  const browser = await gateway.request(path, { ...init, headers: { ...headers, accept: "text/html" } });
  const html = await browser.text();
  return {
    api: { status: api.status, type: apiType, code: problem.code, detail: String(problem.detail) },
    page: {
      status: browser.status,
      type: browser.headers.get("content-type"),
      location: browser.headers.get("location"),
      title: /<h1>([^<]*)<\/h1>/.exec(html)?.[1],
      html,
    },
  };
}

/** Expects the request refused as a bad `param` or `query` field, by both clients, without echoing `echo`. */
async function expectRefused(
  gateway: ReturnType<typeof app>,
  path: string,
  target: "param" | "query",
  field: string,
  title: string,
  init: RequestInit = {},
  echo?: string,
) {
  const { api, page } = await both(gateway, path, init);
  expect({ path, ...api }).toMatchObject({
    path,
    status: 400,
    type: "application/problem+json",
    code: "request.invalid",
  });
  const prefix = `${target} is invalid (${field}: `;
  expect({ path, detail: api.detail.slice(0, prefix.length) }).toEqual({ path, detail: prefix });
  expect({ path, status: page.status, title: page.title, location: page.location }).toEqual({
    path,
    status: 400,
    title,
    location: null,
  });
  expect(page.type).toContain("text/html");
  if (echo !== undefined) expect(page.html).not.toContain(echo);
  expect(page.html).not.toContain("<b>x</b>");
}
describe("a trace's page, /_console/traces/:traceId", () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const store = new TraceStore(
    openBunSqlite(join(mkdtempSync(join(tmpdir(), "audit-console-traces-")), "t.db")),
  );
  store.write([
    {
      traceId,
      spanId: "00f067aa0ba902b7",
      name: "POST /v1/orders",
      kind: "SERVER",
      startMs: 1_767_000_000_000,
      durationMs: 12,
      status: "OK",
      attributes: {},
      links: [],
    },
  ]);
  /** Every trace id the store was asked for. */
  const asked: string[] = [];
  const traces = consoleTraces(store);
  const gateway = app({
    traces: {
      recentTraces: (limit) => traces.recentTraces(limit),
      spans: (id) => {
        asked.push(id);
        return traces.spans(id);
      },
    },
  });
  afterAll(() => store.close());

  test("an id that is not 32 lowercase hex digits (or is all zero) is 400 before the store is read", async () => {
    const oversized = "a".repeat(5_000);
    for (const bad of [
      traceId.toUpperCase(),
      traceId.slice(1),
      `${traceId}0`,
      "0".repeat(32),
      `${"g".repeat(32)}`,
      oversized,
      encodeURIComponent("<b>x</b>"),
      encodeURIComponent(`${traceId.slice(0, 16)}/${traceId.slice(16)}`),
      "%FF",
      "t1",
    ]) {
      await expectRefused(
        gateway,
        `/_console/traces/${bad}`,
        "param",
        "traceId",
        "Invalid trace id",
        {},
        oversized,
      );
    }
    expect(asked).toEqual([]);
  });

  test("a well-formed id is looked up: its waterfall, or 404 when the store has no such trace", async () => {
    asked.length = 0;
    const shown = await both(gateway, `/_console/traces/${traceId}`);
    expect(shown.page.status).toBe(200);
    expect(shown.page.html).toContain("POST /v1/orders");
    const missing = await both(gateway, `/_console/traces/${"1".repeat(32)}`);
    expect(missing.api).toMatchObject({ status: 404, code: "not_found" });
    expect(missing.page).toMatchObject({ status: 404, title: "Traces" });
    expect(asked).toEqual([traceId, traceId, "1".repeat(32), "1".repeat(32)]);
  });
});

describe("the dead-letter forms, /_console/dlq/:dlqId/retry and …/delete, against the broker", () => {
  const schema = uniqueSchema("console_params");
  let broker: Broker;
  let receiver: ReturnType<typeof startReceiver>;
  let refusing = true;
  /** The calls the console made to the broker's API. */
  const calls: string[] = [];
  let gateway: ReturnType<typeof app>;
  const deadLetters = async () =>
    ((await call(broker, "/v2/dlq")).body as { messages: Array<{ dlqId: string; body: string }> }).messages;

  beforeAll(async () => {
    broker = await startTestBroker(schema);
    receiver = startReceiver(() => new Response(refusing ? "no" : "ok", { status: refusing ? 500 : 200 }));
    const { client } = sdkFor(broker);
    for (const n of [1, 2]) await client.publishJSON({ url: receiver.url("/dead"), body: { n }, retries: 0 });
    await waitFor(async () => (await deadLetters()).length === 2, 10_000, "two dead letters");
    refusing = false;
    gateway = app({
      broker: {
        url: broker.url,
        token: broker.token,
        fetch: (input, init) => {
          calls.push(`${init.method ?? "GET"} ${new URL(input).pathname}`);
          return fetch(input, init);
        },
      },
    });
  }, 30_000);
  afterAll(async () => {
    receiver?.stop();
    await broker?.stop();
    await dropSchema(schema);
  });

  test("an id the broker cannot have is 400, and the broker is not called: every dead letter stays", async () => {
    const before = await deadLetters();
    const delivered = receiver.deliveries.length;
    const oversized = `dlq_${"a".repeat(5_000)}`;
    for (const action of ["retry", "delete"]) {
      for (const bad of [
        oversized,
        "a".repeat(129),
        encodeURIComponent("dlq_a/b"),
        encodeURIComponent("dlq a"),
        encodeURIComponent("<b>x</b>"),
        "dlq_%FF",
        "%zz",
        "-dlq",
        "_dlq",
        "dlq.x",
        // The broker API's own words under /v2/dlq/: DELETE /v2/dlq/multi and POST /v2/dlq/retry/multi take lists.
        "multi",
        "retry",
      ]) {
        await expectRefused(
          gateway,
          `/_console/dlq/${bad}/${action}`,
          "param",
          "dlqId",
          "Invalid dead letter",
          { method: "POST" },
          oversized,
        );
      }
    }
    expect(calls).toEqual([]);
    expect(await deadLetters()).toEqual(before);
    await Bun.sleep(100);
    expect(receiver.deliveries.length).toBe(delivered);
  });

  test("the broker's own ids are replayed and deleted; an id of QStash's shape reaches the broker too", async () => {
    calls.length = 0;
    const [first, second] = await deadLetters();
    expect(first?.dlqId).toMatch(/^dlq_/);
    const headers = await admin();
    const replay = await gateway.request(`/_console/dlq/${first?.dlqId}/retry`, { method: "POST", headers });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe("/_console?notice=replayed#queues");
    // Delivered again, and answered this time: it leaves the dead-letter queue.
    await waitFor(
      () => receiver.deliveries.filter((d) => d.body === first?.body).length === 2,
      10_000,
      "the replay",
    );
    const removed = await gateway.request(`/_console/dlq/${second?.dlqId}/delete`, {
      method: "POST",
      headers,
    });
    expect(removed.headers.get("location")).toBe("/_console?notice=deleted#queues");
    expect(await deadLetters()).toEqual([]);
    // QStash's ids look like `1725323658779-0`, and the embedded broker's like newDlqId()'s: neither is refused.
    for (const id of ["1725323658779-0", newDlqId()]) {
      const answer = await gateway.request(`/_console/dlq/${id}/delete`, { method: "POST", headers });
      expect(answer.headers.get("location")).toBe("/_console?notice=failed#queues"); // the broker: no such id
    }
    expect(calls).toEqual([
      `POST /v2/dlq/retry/${first?.dlqId}`,
      `DELETE /v2/dlq/${second?.dlqId}`,
      "DELETE /v2/dlq/1725323658779-0",
      expect.stringMatching(/^DELETE \/v2\/dlq\/dlq_[0-9A-Za-z]{24}$/),
    ]);
  });
});

describe("the inspector form's target, /_console/actors?type=&key=", () => {
  const file = join(mkdtempSync(join(tmpdir(), "audit-console-inspector-")), "actors.db");
  const db = openBunSqlite(file);
  const host = new LocalActorHost({ actors: [counterActor], db });
  const inspector = localInspector((address) => host.inspect(address), db);
  const asked: string[] = [];
  const gateway = app({
    inspect: (address) => {
      asked.push(`${address.type}/${address.key}`);
      return inspector(address);
    },
  });
  afterAll(() => host.stop());

  test("a type or key no actor can have is refused there, not redirected to an address that then is", async () => {
    const active = host.stats().activeActors;
    const oversized = "k".repeat(5_000);
    for (const [query, field] of [
      [`type=counter&key=${oversized}`, "key"],
      [`type=counter&key=${encodeURIComponent("a b")}`, "key"],
      ["type=counter&key=%FF", "key"],
      [`type=${encodeURIComponent("//evil.example")}&key=x`, "type"],
      [`type=Counter&key=x`, "type"],
      [`type=${encodeURIComponent("<b>x</b>")}&key=x`, "type"],
      ["type=counter&key=x&then=1", "then"],
    ] as const) {
      await expectRefused(
        gateway,
        `/_console/actors?${query}`,
        "query",
        field,
        "Invalid actor address",
        {},
        oversized,
      );
    }
    expect(asked).toEqual([]);
    expect(host.stats().activeActors).toBe(active);
  });

  test("a valid one goes to the actor's page, and an empty field back to the form", async () => {
    const headers = await admin();
    const go = await gateway.request("/_console/actors?type=counter&key=c-1", { headers });
    expect(go.status).toBe(303);
    expect(go.headers.get("location")).toBe("/_console/actors/counter/c-1");
    for (const query of ["type=counter&key=", "type=counter", ""]) {
      const back = await gateway.request(`/_console/actors?${query}`, { headers });
      expect({ query, status: back.status, location: back.headers.get("location") }).toEqual({
        query,
        status: 303,
        location: "/_console#inspector",
      });
    }
  });
});

describe("the overview's ?notice=", () => {
  test("a malformed or oversized one is 400; a notice the console wrote still shows", async () => {
    const gateway = app();
    const oversized = "n".repeat(5_000);
    for (const bad of [oversized, encodeURIComponent("<b>x</b>"), "replayed%FF", "re played"]) {
      await expectRefused(
        gateway,
        `/_console?notice=${bad}`,
        "query",
        "notice",
        "Invalid console address",
        {},
        oversized,
      );
    }
    await expectRefused(
      gateway,
      "/_console?notice=purged&then=1",
      "query",
      "then",
      "Invalid console address",
    );
    const shown = await both(gateway, "/_console?notice=purged");
    expect(shown.page.status).toBe(200);
    expect(shown.page.html).toContain("Every dead letter was deleted.");
  });

  test("/openapi.json documents GET /_console's query as the rule checks it: ?notice= and ?token=, each once", async () => {
    const spec = (await (await app().request("/openapi.json")).json()) as {
      paths: Record<
        string,
        {
          get?: {
            parameters?: Array<{
              in: string;
              name: string;
              description?: string;
              schema?: { pattern?: string };
            }>;
          };
        }
      >;
    };
    const query = (spec.paths["/_console"]?.get?.parameters ?? []).filter(
      (parameter) => parameter.in === "query",
    );
    expect(query.map((parameter) => parameter.name).sort()).toEqual(["notice", "token"]);
    expect(query.find((parameter) => parameter.name === "notice")?.schema?.pattern).toBe("^[A-Za-z_]{1,32}$");
    expect(query.find((parameter) => parameter.name === "token")?.description).toContain("admin JWT");
    // The other console pages stay out of the API's document, as before.
    expect(Object.keys(spec.paths).filter((path) => path.startsWith("/_console"))).toEqual(["/_console"]);
  });
});

describe("the live stream's ?after=, on the activity log in Postgres", () => {
  const schema = uniqueSchema("console_params_log");
  const sql = postgres(TEST_DATABASE_URL, {
    max: 2,
    onnotice: () => {},
    connection: { search_path: schema },
  });
  const log = new ActivityLog(sql);
  let gateway: ReturnType<typeof app>;
  let queries = 0;
  beforeAll(async () => {
    await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await log.migrate();
    gateway = app({
      events: {
        latestActivity: (limit) => log.latestActivity(limit),
        activityAfter: (after, limit) => {
          queries++;
          return log.activityAfter(after, limit);
        },
      },
    });
  });
  afterAll(async () => {
    await sql.end();
    await dropSchema(schema);
  });

  test("one that is not a position, or a parameter the stream does not take, is 400 naming it", async () => {
    for (const [query, field] of [
      ["after=abc", "after"],
      [`after=${"9".repeat(5_000)}`, "after"],
      ["after=-1", "after"],
      ["after=%FF", "after"],
      ["after=1&from=2", "from"],
    ] as const) {
      const { api } = await both(gateway, `/_console/events/stream?${query}`);
      expect({ query, ...api }).toMatchObject({ query, status: 400, code: "request.invalid" });
      const prefix = `query is invalid (${field}: `;
      expect({ query, detail: api.detail.slice(0, prefix.length) }).toEqual({ query, detail: prefix });
    }
    expect(queries).toBe(0);
  });

  test("a position streams the entries after it", async () => {
    const envelope = (n: number) =>
      createEnvelope({
        type: "OrderPlaced",
        source: "edgewise://test",
        subject: `order/o-${n}`,
        data: { n },
      });
    const { seq } = await log.recordActivity(envelope(1));
    expect(seq).toBeString();
    const later = envelope(2);
    await log.recordActivity(later);
    const response = await gateway.request(`/_console/events/stream?after=${seq}`, {
      headers: await admin(),
    });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while (!text.includes(later.id)) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toContain("event: activity");
    expect(text).not.toContain(`"subject":"order/o-1"`);
  });
});

describe("a refused parameter's name on a page", () => {
  const sentence = "Your session expired. Sign in again at https://evil.example";
  const pages = [
    ["/_console", "Invalid console address"],
    ["/_console/actors", "Invalid actor address"],
    ["/_console/events/stream", "Invalid stream position"],
  ] as const;
  const unnamed = "a parameter it does not take, whose name is not shown";

  test("is never shown: a sentence of the link's choosing never reaches the console's origin", async () => {
    const gateway = app();
    for (const [path, title] of pages) {
      for (const query of [
        `${encodeURIComponent(sentence)}=1`,
        encodeURIComponent(sentence),
        // A name the query's encoding check refuses: undecodable, or decodable with a value that is not.
        `${encodeURIComponent("Your session expired. Sign in at evil")}%FF=1`,
        `${encodeURIComponent(sentence)}=%FF`,
        `${"a".repeat(41)}=1`,
        `${encodeURIComponent("<b>x</b>")}=1`,
      ]) {
        const { api, page } = await both(gateway, `${path}?${query}`);
        expect({ query, status: page.status, title: page.title }).toEqual({ query, status: 400, title });
        expect(page.html).toContain(unnamed);
        for (const words of ["evil", "session expired", "a".repeat(41), "x&lt;/b&gt;"]) {
          expect({ query, words, shown: page.html.includes(words) }).toEqual({ query, words, shown: false });
        }
        // The API's problem+json still names it, for the client that sent it.
        expect({ query, ...api }).toMatchObject({ query, status: 400, code: "request.invalid" });
        expect(api.detail).toStartWith("query is invalid (");
        expect(api.detail).not.toContain(unnamed);
      }
    }
  });

  test("a plain word it does not take is not named either: the page lists the parameters it takes", async () => {
    const gateway = app();
    const takes = {
      "/_console": "notice, token",
      "/_console/actors": "type, key",
      "/_console/events/stream": "after",
    };
    for (const [path, title] of pages) {
      for (const name of ["then", "a".repeat(40), "evil.example", "Sign_in_again_at_evil.example"]) {
        const { api, page } = await both(gateway, `${path}?${name}=1`);
        expect({ path, name, status: page.status, title: page.title }).toEqual({
          path,
          name,
          status: 400,
          title,
        });
        expect(page.html).toContain(`${unnamed}: it takes ${takes[path]}`);
        expect({ path, name, shown: page.html.includes(name) }).toEqual({ path, name, shown: false });
        // The problem+json still names it, for the client that sent it.
        expect(api.detail).toContain(name);
      }
    }
    // A parameter it takes, with a value it refuses, is named: it is the console's own word.
    const { page } = await both(gateway, "/_console/events/stream?after=x");
    expect(page.html).toContain("Query is invalid (after: must be");
  });

  test("the values a page names (a dead letter's id, an actor's key, a trace id) are refused by their rules unshown", async () => {
    const gateway = app({ inspect: () => Promise.reject(new Error("not asked")) });
    const text = encodeURIComponent(sentence);
    for (const [path, init] of [
      [`/_console/actors/counter/${text}`, {}],
      [`/_console/actors?type=counter&key=${text}`, {}],
      [`/_console/traces/${text}`, {}],
      [`/_console/dlq/${text}/retry`, { method: "POST" }],
      [`/_console?notice=${text}`, {}],
      [`/_console/events/stream?after=${text}`, {}],
    ] as const) {
      const { page } = await both(gateway, path, init);
      expect({ path, status: page.status }).toEqual({ path, status: 400 });
      expect({ path, shown: page.html.includes("evil") }).toEqual({ path, shown: false });
    }
  });
});
