// Security suite, body: oversized, deeply nested, huge-valued, mistyped and malformed-UTF-8 bodies get a 4xx, change nothing, crash nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateSecret, signedHeaders } from "../../actors/commerce/webhooks/index.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { uniqueName } from "../commerce/client.ts";
import { attackCategory } from "./report.ts";
import { type Answer, type Credential, expectClosed, rawRequest, send } from "./support.ts";

const cases = attackCategory("body");

/** Large enough that 100k levels of nesting reach the JSON parser instead of the limit. */
const LIMIT = 256 * 1024;
const supplierSecret = generateSecret();
let running: CommerceNode;
let admin: Credential;
let customer: Credential;
const owner = uniqueName("cust-body");
const sku = uniqueName("body-sku");
let before: Awaited<ReturnType<typeof snapshot>>;

beforeAll(async () => {
  running = await startCommerceNode("security_body", {
    BODY_LIMIT: "256kb",
    INBOUND_WEBHOOK_SECRETS: `supplier=${supplierSecret}`,
  });
  const api = running.client;
  await api.putSku(sku, 10, 100);
  await api.putAccount(owner, 1_000);
  admin = { bearer: await api.token() };
  customer = {
    bearer: await api.token(owner, ["orders:read", "orders:write", "billing:read", "billing:write"]),
  };
  before = await snapshot();
}, 30_000);
afterAll(() => running?.stop());

/** What a refused request could have changed: the sku, the account, other accounts, subscriptions, API keys. */
async function snapshot() {
  const { sql } = running.node;
  const [counts] = await sql<Array<{ subscriptions: number; keys: number; accounts: number }>>`
    SELECT (SELECT count(*) FROM webhook_subscriptions)::int AS subscriptions,
           (SELECT count(*) FROM edgewise_api_keys)::int AS keys,
           (SELECT count(*) FROM billing_accounts)::int AS accounts`;
  return {
    sku: running.node.host?.inspect({ type: "inventory", key: sku }).state,
    balance: await running.client.balance(owner),
    ...counts,
  };
}
const unchanged = async () => Bun.deepEquals(await snapshot(), before);

/** A body that is `size` bytes of valid JSON for the route's fields plus padding. */
const padded = (fields: Record<string, unknown>, size: number) => {
  const head = JSON.stringify({ ...fields, pad: "" });
  return `${head.slice(0, -2)}${"x".repeat(Math.max(0, size - head.length))}"}`;
};

/** The body as a stream of 16 KiB chunks: sent chunked, with no Content-Length. */
function chunked(body: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(body);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(at, at + 16_384));
      at += 16_384;
    },
  });
}

async function sendStream(method: string, path: string, body: string, as: Credential): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (as && "bearer" in as) headers.authorization = `Bearer ${as.bearer}`;
  const response = await fetch(`${running.node.url}${path}`, {
    method,
    headers,
    body: chunked(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    problem: response.headers.get("content-type") === "application/problem+json",
    text,
    headers: response.headers,
    json: undefined,
  };
}

const refusedWith = async (answer: Pick<Answer, "status" | "problem">) => ({
  status: answer.status,
  problem: answer.problem,
  unchanged: await unchanged(),
});

describe("oversized bodies", () => {
  const over = LIMIT + 40_000;
  const routes = (): Array<[string, string, string, Credential]> => [
    ["PUT", `/v1/inventory/${sku}`, padded({ available: 0, priceCents: 1 }, over), admin],
    ["PUT", `/v1/accounts/${owner}`, padded({ balanceCents: 0 }, over), customer],
    ["POST", "/v1/orders", padded({ customerId: owner, items: [{ sku, quantity: 1 }] }, over), customer],
    ["POST", "/v1/api-keys", padded({ sub: owner, scopes: ["admin"] }, over), admin],
    [
      "POST",
      "/v1/webhooks/subscriptions",
      padded({ url: "http://127.0.0.1:9/", events: ["order.confirmed"] }, over),
      admin,
    ],
  ];

  test("with a Content-Length over BODY_LIMIT: 413 problem+json, nothing changed", async () => {
    for (const [method, path, body, as] of routes()) {
      const answer = await send(running.node.url, method, path, { as, body });
      expectClosed(
        cases,
        `${method} ${path}, ${body.length} bytes, Content-Length`,
        await refusedWith(answer),
        {
          status: 413,
          problem: true,
          unchanged: true,
        },
      );
    }
  });

  test("chunked, without a Content-Length: 413 problem+json, nothing changed", async () => {
    for (const [method, path, body, as] of routes()) {
      const answer = await sendStream(method, path, body, as);
      expectClosed(cases, `${method} ${path}, ${body.length} bytes, chunked`, await refusedWith(answer), {
        status: 413,
        problem: true,
        unchanged: true,
      });
    }
  });

  test("an inbound webhook, a broker delivery (1 MiB limit) and a console form (16 KiB) have their own limits", async () => {
    const delivery = padded({ id: "x" }, 1_100_000);
    const webhook = padded({ type: "inventory.restocked", sku, quantity: 1 }, over);
    const attempts: Array<[string, string, string, Record<string, string>]> = [
      [
        "an inbound webhook, signed",
        "/webhooks/inbound/supplier",
        webhook,
        await signedHeaders({
          secret: supplierSecret,
          id: uniqueName("msg"),
          body: webhook,
          now: Date.now(),
        }),
      ],
      ["a broker delivery", `/_edgewise/deliver/inventory/${sku}`, delivery, {}],
      [
        "a console form",
        "/_console/dlq/purge",
        `csrf=${"x".repeat(20_000)}`,
        {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `Bearer ${(admin as { bearer: string }).bearer}`,
        },
      ],
    ];
    for (const [name, path, body, headers] of attempts) {
      const answer = await send(running.node.url, "POST", path, { body, headers });
      expectClosed(cases, `${name} of ${body.length} bytes`, await refusedWith(answer), {
        status: 413,
        problem: true,
        unchanged: true,
      });
    }
  });

  test("framing tricks on the socket: a huge Content-Length, a huge chunk, Content-Length with chunked", async () => {
    const token = (admin as { bearer: string }).bearer;
    const head = (extra: string) =>
      `PUT /v1/inventory/${sku} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nConnection: close\r\n${extra}\r\n`;
    const body = JSON.stringify({ available: 0, priceCents: 1 });
    const attempts: Array<[string, string, (status: number) => boolean]> = [
      [
        "Content-Length of 10 GiB, a small body",
        `${head("Content-Length: 10737418240\r\n")}${body}`,
        (s) => s === 413,
      ],
      [
        "a chunk declared as 4 GiB",
        `${head("Transfer-Encoding: chunked\r\n")}FFFFFFFF\r\n${body}${"x".repeat(LIMIT + 1_000)}`,
        (s) => s === 413 || s === 400,
      ],
      [
        "Content-Length and Transfer-Encoding together (smuggling)",
        `${head(`Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n`)}${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
        (s) => s >= 400 && s < 500,
      ],
      ["a negative Content-Length", `${head("Content-Length: -1\r\n")}${body}`, (s) => s >= 400 && s < 500],
    ];
    for (const [name, request, acceptable] of attempts) {
      const answer = await rawRequest(running.node.port, request);
      expectClosed(
        cases,
        `socket: ${name}`,
        { refused: acceptable(answer.status), unchanged: await unchanged() },
        { refused: true, unchanged: true },
      );
    }
  });
});

describe("deep, huge and odd JSON", () => {
  const deep = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
  const deepObject = (levels: number) => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;

  test("100k levels of nesting, unclosed nesting, and nesting inside a field: 400, never a 5xx", async () => {
    const attempts: Array<[string, string, string, Credential]> = [
      ["POST", "/v1/orders", deep(100_000), customer],
      ["POST", "/v1/orders", "[".repeat(200_000), customer],
      ["POST", "/v1/orders", `{"customerId":${deep(100_000)},"items":[]}`, customer],
      ["POST", "/v1/orders", `{"customerId":"${owner}","items":[${deep(100_000)}]}`, customer],
      ["PUT", `/v1/inventory/${sku}`, `{"available":${deepObject(30_000)},"priceCents":1}`, admin],
      ["PUT", `/v1/accounts/${owner}`, `{"balanceCents":1,"extra":${deep(100_000)}}`, customer],
      ["POST", "/v1/api-keys", `{"sub":${deep(100_000)},"scopes":["admin"]}`, admin],
      ["POST", "/v1/api-keys", deepObject(40_000), admin],
      ["POST", "/v1/webhooks/subscriptions", `{"url":${deep(100_000)},"events":["order.confirmed"]}`, admin],
      ["POST", "/v1/counters/c1/increment", `{"by":${deep(100_000)}}`, customer],
    ];
    for (const [method, path, body, as] of attempts) {
      const answer = await send(running.node.url, method, path, { as, body });
      expectClosed(
        cases,
        `${method} ${path}: ${body.slice(0, 24)}… (${body.length} bytes)`,
        await refusedWith(answer),
        {
          status: 400,
          problem: true,
          unchanged: true,
        },
      );
    }
    expect((await send(running.node.url, "GET", "/healthz")).status).toBe(200);
  });

  test("a validly signed inbound webhook nested 100k deep is 422, and restocks nothing", async () => {
    const bodies: Array<[string, string]> = [
      ["the whole body 100k levels deep", deep(100_000)],
      ["the type holding 50k levels", `{"type":${deep(50_000)},"sku":"${sku}","quantity":1}`],
      [
        "the quantity holding 30k levels",
        `{"type":"inventory.restocked","sku":"${sku}","quantity":${deepObject(30_000)}}`,
      ],
    ];
    for (const [name, body] of bodies) {
      const headers = await signedHeaders({
        secret: supplierSecret,
        id: uniqueName("msg"),
        body,
        now: Date.now(),
      });
      const answer = await send(running.node.url, "POST", "/webhooks/inbound/supplier", { body, headers });
      expectClosed(cases, `inbound webhook, ${name}`, await refusedWith(answer), {
        status: 422,
        problem: true,
        unchanged: true,
      });
    }
  });

  test("huge, fractional, negative and non-numbers, and arrays for objects: 400, nothing changed", async () => {
    const attempts: Array<[string, string, string, Credential]> = [
      ["PUT", `/v1/inventory/${sku}`, '{"available":1e999,"priceCents":1}', admin],
      ["PUT", `/v1/inventory/${sku}`, `{"available":1${"0".repeat(100_000)},"priceCents":1}`, admin],
      ["PUT", `/v1/inventory/${sku}`, '{"available":1e308,"priceCents":1}', admin],
      ["PUT", `/v1/inventory/${sku}`, '{"available":5,"priceCents":9007199254740993}', admin],
      ["PUT", `/v1/inventory/${sku}`, '{"available":1.0000000000000002,"priceCents":1}', admin],
      ["PUT", `/v1/inventory/${sku}`, '{"available":-1,"priceCents":1}', admin],
      ["PUT", `/v1/inventory/${sku}`, '{"available":"5","priceCents":1}', admin],
      ["PUT", `/v1/inventory/${sku}`, '{"available":NaN,"priceCents":1}', admin],
      ["PUT", `/v1/accounts/${owner}`, '{"balanceCents":9007199254740993}', customer],
      ["PUT", `/v1/accounts/${owner}`, '{"balanceCents":-0.5}', customer],
      ["POST", "/v1/orders", `{"customerId":"${owner}","items":[{"sku":"${sku}","quantity":1e9}]}`, customer],
      ["POST", "/v1/orders", `{"customerId":"${owner}","items":[{"sku":"${sku}","quantity":-0}]}`, customer],
      ["POST", "/v1/counters/c1/increment", '{"by":1e21}', customer],
      // An array where an object is expected: valibot alone would read `[]` as `{}` and take the defaults.
      ["POST", "/v1/counters/c1/increment", "[]", customer],
      ["PUT", `/v1/inventory/${sku}`, "[1,2]", admin],
      ["POST", "/v1/orders", "[]", customer],
    ];
    for (const [method, path, body, as] of attempts) {
      const answer = await send(running.node.url, method, path, { as, body });
      expectClosed(cases, `${method} ${path}: ${body.slice(0, 48)}`, await refusedWith(answer), {
        status: 400,
        problem: true,
        unchanged: true,
      });
    }
  });

  test("huge strings, too many items, prototype keys, NUL characters and malformed %-escapes: 400, nothing stored", async () => {
    const big = "a".repeat(200_000);
    const attempts: Array<[string, string, string | undefined, Credential, Record<string, string>?]> = [
      ["POST", "/v1/orders", JSON.stringify({ customerId: big, items: [{ sku, quantity: 1 }] }), customer],
      [
        "POST",
        "/v1/orders",
        JSON.stringify({ customerId: owner, items: [{ sku: big, quantity: 1 }] }),
        customer,
      ],
      [
        "POST",
        "/v1/orders",
        JSON.stringify({
          customerId: owner,
          items: Array.from({ length: 1_000 }, () => ({ sku, quantity: 1 })),
        }),
        customer,
      ],
      [
        "POST",
        "/v1/orders",
        JSON.stringify({ customerId: owner, items: [{ sku, quantity: 1 }] }),
        customer,
        { "idempotency-key": "k".repeat(8_000) },
      ],
      ["PUT", `/v1/inventory/${sku}`, '{"available":1,"priceCents":1,"__proto__":{"admin":true}}', admin],
      ["PUT", `/v1/accounts/${owner}`, '{"balanceCents":1,"constructor":{"prototype":{"x":1}}}', customer],
      ["POST", "/v1/api-keys", JSON.stringify({ sub: big, scopes: ["orders:read"] }), admin],
      ["POST", "/v1/api-keys", JSON.stringify({ sub: "a\u0000b", scopes: ["orders:read"] }), admin],
      [
        "POST",
        "/v1/api-keys",
        JSON.stringify({ sub: "ab", scopes: ["orders:read"], name: "n\u0000" }),
        admin,
      ],
      [
        "POST",
        "/v1/webhooks/subscriptions",
        JSON.stringify({ url: "http://127.0.0.1:9/\u0000", events: ["order.confirmed"] }),
        admin,
      ],
      [
        "POST",
        "/v1/webhooks/subscriptions",
        JSON.stringify({ url: `http://127.0.0.1:9/${big}`, events: ["order.confirmed"] }),
        admin,
      ],
      ["GET", "/v1/orders?q=%00", undefined, customer],
      ["GET", `/v1/orders?q=a%00b&customerId=${owner}`, undefined, customer],
      ["GET", "/v1/activity?subject=%00", undefined, admin],
      ["GET", "/v1/activity?type=a%00", undefined, admin],
      // Malformed percent-encoding: before, each was searched for as its raw text (a 200 with the wrong answer).
      ["GET", "/v1/orders?q=%E0%A4%A", undefined, customer],
      ["GET", `/v1/orders?customerId=${owner}&q=%zz`, undefined, customer],
      ["GET", "/v1/orders?q=100%", undefined, customer],
      ["GET", "/v1/activity?subject=%FF", undefined, admin],
      ["GET", "/v1/activity?type=order.%C0%AE", undefined, admin],
      // The same in path parameters: before, a customerId (any text) was its raw text, and PUT opened the account
      // "%FF" (the customer /v1/accounts/%25FF names) with a 200. A sku or order id was already refused by its schema.
      ["PUT", "/v1/accounts/%FF", '{"balanceCents":1}', admin],
      ["PUT", "/v1/accounts/%E0%A4%A", '{"balanceCents":1}', admin],
      ["PUT", "/v1/accounts/%zz", '{"balanceCents":1}', admin],
      ["GET", "/v1/accounts/x%C0%AF", undefined, admin],
      ["GET", "/v1/customers/%FF/loyalty", undefined, admin],
      ["PUT", "/v1/inventory/%FF", '{"available":1,"priceCents":1}', admin],
      ["PUT", "/v1/inventory/a%2Fb", '{"available":1,"priceCents":1}', admin],
      ["PUT", "/v1/inventory/%00", '{"available":1,"priceCents":1}', admin],
      ["POST", "/v1/orders/%E0%A4%A/cancel", undefined, customer],
      ["DELETE", "/v1/webhooks/subscriptions/%zz", undefined, admin],
    ];
    for (const [method, path, body, as, headers] of attempts) {
      const answer = await send(running.node.url, method, path, {
        as,
        ...(body !== undefined ? { body } : {}),
        ...(headers ? { headers } : {}),
      });
      expectClosed(
        cases,
        `${method} ${path.slice(0, 60)} ${(body ?? "").slice(0, 40)}`,
        await refusedWith(answer),
        {
          status: 400,
          problem: true,
          unchanged: true,
        },
      );
    }
  });
});

describe("content types and encodings", () => {
  const order = JSON.stringify({ customerId: owner, items: [{ sku, quantity: 1 }] });

  test("a JSON body not declared as JSON is 415", async () => {
    for (const type of [
      undefined,
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/jsonx",
      "application/xml",
      "json",
    ]) {
      const response = await fetch(`${running.node.url}/v1/orders`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${(customer as { bearer: string }).bearer}`,
          ...(type ? { "content-type": type } : {}),
        },
        body: type === undefined ? new Blob([order]) : order,
      });
      await response.body?.cancel();
      expectClosed(
        cases,
        `POST /v1/orders as ${type ?? "no content type"}`,
        await refusedWith({
          status: response.status,
          problem: response.headers.get("content-type") === "application/problem+json",
        }),
        { status: 415, problem: true, unchanged: true },
      );
    }
  });

  test("invalid UTF-8, overlong encodings and UTF-16 sent as JSON: 400", async () => {
    const bytes = (...parts: Array<string | number[]>) =>
      new Uint8Array(
        Buffer.concat(
          parts.map((part) => (typeof part === "string" ? Buffer.from(part) : Buffer.from(part))),
        ),
      );
    const attempts: Array<[string, string, string, Uint8Array<ArrayBuffer>, Credential]> = [
      [
        "invalid bytes in a customer id",
        "POST",
        "/v1/orders",
        bytes('{"customerId":"', [0xff, 0xfe], `","items":[{"sku":"${sku}","quantity":1}]}`),
        customer,
      ],
      [
        "a lone continuation byte in a sku",
        "PUT",
        `/v1/inventory/${sku}`,
        bytes('{"available":1,"priceCents":', [0x80], "1}"),
        admin,
      ],
      [
        "an overlong '/' in a customer id",
        "POST",
        "/v1/orders",
        bytes('{"customerId":"a', [0xc0, 0xaf], `b","items":[{"sku":"${sku}","quantity":1}]}`),
        customer,
      ],
      [
        "an encoded surrogate (CESU-8)",
        "PUT",
        `/v1/accounts/${owner}`,
        bytes('{"balanceCents":1,"', [0xed, 0xa0, 0x80], '":1}'),
        customer,
      ],
      [
        "a truncated sequence at the end",
        "PUT",
        `/v1/accounts/${owner}`,
        bytes('{"balanceCents":1}', [0xe2, 0x82]),
        customer,
      ],
      [
        "UTF-16 with a BOM",
        "PUT",
        `/v1/accounts/${owner}`,
        new Uint8Array(Buffer.from(`\ufeff{"balanceCents":0}`, "utf16le")),
        customer,
      ],
    ];
    for (const [name, method, path, body, as] of attempts) {
      const response = await fetch(`${running.node.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${(as as { bearer: string }).bearer}`,
          "content-type": "application/json",
        },
        body,
      });
      await response.body?.cancel();
      expectClosed(
        cases,
        `${method} ${path}: ${name}`,
        await refusedWith({
          status: response.status,
          problem: response.headers.get("content-type") === "application/problem+json",
        }),
        { status: 400, problem: true, unchanged: true },
      );
    }
  });
});

test("after all of it the node still serves, and still takes a good request", async () => {
  expect((await send(running.node.url, "GET", "/healthz")).status).toBe(200);
  expect((await send(running.node.url, "GET", "/readyz")).status).toBe(200);
  expect(await snapshot()).toEqual(before);
  expect((await running.client.putAccount(owner, 1_001)).balanceCents).toBe(1_001);
});
