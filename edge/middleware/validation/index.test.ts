// Unit tests of validate(): field paths in problems, and JSON arrays refused where an object is expected.
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import * as v from "valibot";
import type { GatewayEnv } from "../../env.ts";
import { errorHandler } from "../../errors.ts";
import { CustomerParam, ListOrdersQuery } from "../../routes/commerce/schemas.ts";
import { validate } from "./index.ts";

const app = new Hono<GatewayEnv>();
app.onError(errorHandler());
app.post("/counters", validate("json", v.strictObject({ by: v.optional(v.number(), 1) })), (c) =>
  c.json(c.req.valid("json")),
);
app.post("/batch", validate("json", v.array(v.number())), (c) => c.json(c.req.valid("json")));
app.post("/names", validate("json", v.strictObject({ name: v.string() })), (c) =>
  c.json(c.req.valid("json")),
);
app.get(
  "/things",
  validate(
    "query",
    v.strictObject({
      status: v.optional(v.picklist(["open", "closed"])),
      limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/))),
      q: v.optional(v.string()),
    }),
  ),
  (c) => c.json(c.req.valid("query")),
);
app.get("/orders", validate("query", ListOrdersQuery), (c) => c.json(c.req.valid("query")));
// A schema that takes any text, as a customerId does: only the encoding check stands between "%FF" and the route.
const shops = new Hono<GatewayEnv>();
shops.get(
  "/:shop/items/:item",
  validate("param", v.strictObject({ shop: v.string(), item: v.string() })),
  (c) => c.json(c.req.valid("param")),
);
app.route("/shops", shops);
app.get("/accounts/:customerId", validate("param", CustomerParam), (c) => c.json(c.req.valid("param")));
const post = (path: string, body: string) =>
  app.request(path, { method: "POST", body, headers: { "content-type": "application/json" } });

describe("validate", () => {
  test("an object body passes, defaults applied; so does no body at all", async () => {
    expect(await (await post("/counters", "{}")).json()).toEqual({ by: 1 });
    const empty = await app.request("/counters", { method: "POST" });
    expect(empty.status).toBe(200);
    expect(await empty.json()).toEqual({ by: 1 });
  });

  test("an array where an object is expected is a 400 problem, not an object with defaults", async () => {
    // A strict object refuses a non-empty array by its keys ("0"); the empty array is what slipped through.
    for (const body of ["[1]", '[{"by":2}]']) expect((await post("/counters", body)).status).toBe(400);
    const empty = await post("/counters", "[]");
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { detail: string }).detail).toContain("not an array");
    // Where the object has required fields, the array is still named as such, not as missing fields.
    const named = await post("/names", "[]");
    expect(((await named.json()) as { detail: string }).detail).toBe(
      "body is invalid (expected an object, not an array)",
    );
  });

  test("problems say plainly what is wrong: missing, unknown, or the wrong kind of value", async () => {
    const errorsOf = async (response: Response) =>
      ((await response.json()) as { errors: Array<{ path: string; message: string }> }).errors;
    expect(await errorsOf(await post("/names", "{}"))).toEqual([{ path: "name", message: "is required" }]);
    expect(await errorsOf(await post("/names", '{"name":"a","nmae":"b"}'))).toEqual([
      { path: "nmae", message: "is not a field here (unknown fields are refused)" },
    ]);
    expect(await errorsOf(await post("/names", '{"name":42}'))).toEqual([
      { path: "name", message: "must be a string, not a number" },
    ]);
    // The API's own page limit says the same thing however it is out of range.
    for (const limit of ["0", "101", "1000", "2.5"])
      expect(await errorsOf(await app.request(`/orders?limit=${limit}`))).toEqual([
        { path: "limit", message: "must be 1 to 100" },
      ]);
    expect(await errorsOf(await app.request("/things?q=a&q=b"))).toEqual([
      { path: "q", message: "must be a string, not an array (a repeated query parameter?)" },
    ]);
  });

  test("an array schema still takes arrays; a wrong field is reported with its path", async () => {
    expect(await (await post("/batch", "[1,2]")).json()).toEqual([1, 2]);
    const response = await post("/counters", '{"by":"two"}');
    expect(response.status).toBe(400);
    expect(((await response.json()) as { errors: Array<{ path: string }> }).errors[0]?.path).toBe("by");
  });

  test("a JSON body that is not UTF-8 is a 400 problem, not U+FFFD in a field; real UTF-8 passes", async () => {
    const send = (bytes: number[]) =>
      app.request("/names", {
        method: "POST",
        body: new Uint8Array([...Buffer.from('{"name":"'), ...bytes, ...Buffer.from('"}')]),
        headers: { "content-type": "application/json" },
      });
    // A stray 0xFF, an overlong '/' (0xC0 0xAF), a lone continuation byte: before, each became U+FFFD and passed.
    for (const bad of [[0xff, 0xfe], [0x61, 0xc0, 0xaf], [0x80]]) {
      const refused = await send(bad);
      expect(refused.status).toBe(400);
      expect(refused.headers.get("content-type")).toBe("application/problem+json");
      expect(((await refused.json()) as { detail: string }).detail).toBe("body is not valid UTF-8");
    }
    expect(await (await send([...Buffer.from("zoë 日本 🚀")])).json()).toEqual({ name: "zoë 日本 🚀" });
  });

  test("a \\u escape of half a surrogate pair is a 400 naming its field, not U+FFFD in a store", async () => {
    // Valid UTF-8 on the wire, but text no store can hold: Postgres and TextEncoder write U+FFFD instead, so the
    // customer "x\ud800" was the customer "x\ufffd". A body like this passed before.
    for (const [body, path] of [
      ['{"name":"x\\ud800"}', "name"],
      ['{"name":"\\uDC00x"}', "name"],
      ['{"name":"\\ude00\\ud83d"}', "name"], // the pair's halves in the wrong order
      ['{"by":1,"\\ud800":2}', "\ud800"],
    ] as const) {
      const refused = await post(path === "name" ? "/names" : "/counters", body);
      expect(refused.status).toBe(400);
      expect(refused.headers.get("content-type")).toBe("application/problem+json");
      const problem = (await refused.json()) as { errors: Array<{ path: string; message: string }> };
      expect(problem.errors).toEqual([
        { path, message: "must be well-formed Unicode (a \\u escape names half a surrogate pair)" },
      ]);
    }
    // An escaped pair is one character, and passes; so does an escaped backslash before a "u".
    expect(await (await post("/names", '{"name":"\\ud83d\\ude80 \\\\ud800"}')).json()).toEqual({
      name: "🚀 \\ud800",
    });
  });

  test("a content-coded body is a 415 with Accept-Encoding: identity, not its compressed bytes read as text", async () => {
    const gzipped = Bun.gzipSync(Buffer.from('{"by":2}'));
    for (const [coding, body] of [
      ["gzip", gzipped],
      ["GZIP", gzipped],
      ["br", Buffer.from('{"by":2}')], // labelled but sent plain: before, taken as if the label were not there
      ["gzip, identity", gzipped],
    ] as const) {
      const refused = await app.request("/counters", {
        method: "POST",
        body,
        headers: { "content-type": "application/json", "content-encoding": coding },
      });
      expect({ coding, status: refused.status }).toEqual({ coding, status: 415 });
      expect(refused.headers.get("accept-encoding")).toBe("identity");
      expect(await refused.json()).toMatchObject({
        code: "request.unsupported_media_type",
        detail: "send the body without a Content-Encoding: a compressed request body is not accepted",
      });
    }
    const identity = await app.request("/counters", {
      method: "POST",
      body: '{"by":2}',
      headers: { "content-type": "application/json", "content-encoding": "identity" },
    });
    expect(await identity.json()).toEqual({ by: 2 });
  });

  test("a JSON body may name UTF-8 as its charset, and no other: 415, not other text than was sent", async () => {
    const send = (contentType: string, bytes: Uint8Array<ArrayBuffer>) =>
      app.request("/names", { method: "POST", body: bytes, headers: { "content-type": contentType } });
    // "Ã©" in Latin-1 is the bytes C3 A9, which read as UTF-8 are "é": before, the route got "é".
    const latin1 = new Uint8Array([...Buffer.from('{"name":"'), 0xc3, 0xa9, ...Buffer.from('"}')]);
    for (const contentType of [
      "application/json; charset=latin1",
      "application/json; charset=ISO-8859-1",
      'application/json;charset="windows-1252"',
      "application/merge-patch+json; charset=utf-16",
    ]) {
      const refused = await send(contentType, latin1);
      expect({ contentType, status: refused.status }).toEqual({ contentType, status: 415 });
      expect(await refused.json()).toMatchObject({
        code: "request.unsupported_media_type",
        detail: "send the body as UTF-8 JSON (RFC 8259): its Content-Type names another charset",
      });
    }
    for (const contentType of [
      "application/json; charset=utf-8",
      'application/json; charset="UTF-8"',
      "application/json;charset=utf8",
      "application/vnd.api+json; charset=UTF-8",
      "application/json",
    ]) {
      const accepted = await send(contentType, latin1);
      expect({ contentType, body: await accepted.json() }).toEqual({ contentType, body: { name: "é" } });
    }
    // A byte order mark before the JSON (RFC 8259 §8.1 lets a parser ignore it) is dropped, not a parse error.
    const marked = new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from('{"name":"bom"}')]);
    expect(await (await send("application/json; charset=utf-8", marked)).json()).toEqual({ name: "bom" });
  });

  test("a member named twice in one object is a 400 naming it, not the last one silently kept", async () => {
    for (const [path, body, field] of [
      ["/counters", '{"by":1,"by":500}', "by"],
      ["/counters", '{"by":1,"\\u0062y":500}', "by"], // the same name, escaped
      ["/batch", "[1,2]", undefined],
      ["/names", '{"name":"a,\\"name\\":\\"b"}', undefined], // the second "name" is inside a string
      ["/counters", '{"b\\x":1,"b\\x":2}', null], // not JSON (no such escape): malformed, not a duplicate or a 500
    ] as const) {
      const response = await post(path, body);
      if (field === null) {
        expect({ body, status: response.status }).toEqual({ body, status: 400 });
        expect(((await response.json()) as { detail: string }).detail).toBe("Malformed JSON in request body");
        continue;
      }
      if (field === undefined) {
        expect({ body, status: response.status }).toEqual({ body, status: 200 });
        continue;
      }
      expect({ body, status: response.status }).toEqual({ body, status: 400 });
      expect(((await response.json()) as { errors: unknown }).errors).toEqual([
        { path: field, message: "is given more than once (a JSON object's member names must be unique)" },
      ]);
    }
  });

  test("malformed percent-encoding in any query parameter is a 400 problem naming it, not its raw text", async () => {
    const refused = async (query: string) => {
      const response = await app.request(`/things?${query}`);
      expect({ query, status: response.status, type: response.headers.get("content-type") }).toEqual({
        query,
        status: 400,
        type: "application/problem+json",
      });
      return ((await response.json()) as { errors: Array<{ path: string }> }).errors.map((e) => e.path);
    };
    // A cut UTF-8 sequence, an escape without hex, a lone %, bytes that are not UTF-8, an overlong '/', a surrogate.
    expect(await refused("q=%E0%A4%A")).toEqual(["q"]);
    expect(await refused("q=%zz")).toEqual(["q"]);
    expect(await refused("status=open&q=50%")).toEqual(["q"]);
    expect(await refused("limit=%FF")).toEqual(["limit"]);
    expect(await refused("q=%C0%AF")).toEqual(["q"]);
    expect(await refused("q=%ED%A0%80&status=%E2%82")).toEqual(["q", "status"]);
    expect(await refused("%zz=1")).toEqual(["%zz"]);
    expect(await refused("q%E2=1")).toEqual(["q%E2"]);
    // The API's own schemas get it too, through the same validate().
    expect(await (await app.request("/orders?q=%E0%A4%A")).json()).toMatchObject({
      status: 400,
      code: "request.invalid",
      errors: [{ path: "q" }],
    });
    // Well-formed escapes still decode as before: UTF-8, a literal % and +, and + as a space.
    expect(await (await app.request("/things?q=%E0%A4%A4%20%25%2B+")).json()).toEqual({ q: "त %+ " });
  });

  test("malformed percent-encoding in a path parameter is a 400 problem naming it, not its raw text", async () => {
    const refused = async (path: string) => {
      const response = await app.request(path);
      expect({ path, status: response.status, type: response.headers.get("content-type") }).toEqual({
        path,
        status: 400,
        type: "application/problem+json",
      });
      return ((await response.json()) as { errors: Array<{ path: string }> }).errors.map((e) => e.path);
    };
    // Before, each was the customerId "%FF", "%zz", … (the one /accounts/%25FF names): a different customer.
    for (const bad of ["%FF", "%zz", "%E0%A4%A", "50%", "%C0%AF", "%ED%A0%80", "a%E2b"])
      expect(await refused(`/accounts/${bad}`)).toEqual(["customerId"]);
    // Named by the route's parameter in its place, on a mounted sub-app too; a query string is not the path.
    expect(await refused("/shops/%FF/items/ok?q=%20")).toEqual(["shop"]);
    expect(await refused("/shops/ok/items/%zz")).toEqual(["item"]);
    expect(await refused("/shops/%E0%A4%A/items/%FF")).toEqual(["shop", "item"]);
    expect(await (await app.request("/accounts/%FF")).json()).toMatchObject({
      status: 400,
      code: "request.invalid",
      detail: "param is invalid (customerId: is not valid percent-encoding (%XX escapes of UTF-8 bytes))",
    });
    // Well-formed escapes decode as before: UTF-8, a literal %, an encoded '/' kept inside its parameter.
    expect(await (await app.request("/accounts/%25FF")).json()).toEqual({ customerId: "%FF" });
    expect(await (await app.request("/accounts/zo%C3%AB%20%E0%A4%A4")).json()).toEqual({
      customerId: "zoë त",
    });
    expect(await (await app.request("/accounts/auth0%7Ca%2Fb")).json()).toEqual({ customerId: "auth0|a/b" });
    expect(await (await app.request("/shops/a%2Fb/items/%25?q=%zz")).json()).toEqual({
      shop: "a/b",
      item: "%",
    });
  });

  test("a query parameter sent empty means the same as one left out; a wrong one is still refused", async () => {
    const blank = await app.request("/things?status=&limit=&q=");
    expect(blank.status).toBe(200);
    expect(await blank.json()).toEqual({});
    expect(await (await app.request("/things?status=open&limit=")).json()).toEqual({ status: "open" });
    expect((await app.request("/things?status=shut")).status).toBe(400);
    expect((await app.request("/things?limit=abc")).status).toBe(400);
    expect((await app.request("/things?unknown=")).status).toBe(400);
  });
});
