// Fuzz endpoints: one request arbitrary per route (openapi.json's, then the gateway's own), and how a request is sent.
import { parseJsonOrUndefined } from "./support.ts";
import { createHash, createHmac } from "node:crypto";
import { toJsonSchema } from "@valibot/to-json-schema";
import fc from "fast-check";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { RestockedPayload } from "../../actors/commerce/webhooks/inbound.ts";
import { sign as signWebhook } from "../../actors/commerce/webhooks/sign.ts";
import { actorHostPaths, signedMessage } from "../../actors/hosts/remote/protocol.ts";
import { CreateApiKeyBody } from "../../edge/routes/api-keys.ts";
import {
  contentTypes,
  fromSchema,
  type Hints,
  headerValue,
  hostileQueryValue,
  hostileSegment,
  hostileString,
  hostileValue,
  mutated,
  Ref,
  randomBody,
  rawJsonText,
  ref,
  resolveRefs,
  safeEncode,
} from "./fuzz-values.ts";

export type BodySpec = (
  | { json: unknown }
  | { text: string }
  | { bytes: Uint8Array<ArrayBuffer> }
  | { form: Record<string, string | Ref> }
) & { type?: string | null };

/** One generated request, as fast-check prints it: credentials and signatures by name, ids as pool references. */
export interface FuzzRequest {
  endpoint: string;
  method: string;
  /** Path segments: a string goes on the wire as it is (already encoded), a Ref is resolved and encoded. */
  path: Array<string | Ref>;
  /** Name (on the wire as it is) and value (a string as it is, a Ref resolved and encoded). */
  query: Array<[string, string | Ref]>;
  headers: Array<[string, string]>;
  /** A credential label (see `authLabels`), or `raw:<Authorization value>`. */
  auth: string;
  body?: BodySpec;
  /** For the signed endpoints: how the signature is made (`valid`, `none`, `garbage`, `stale`…). */
  signature?: string;
  /** Sent over a plain socket, byte for byte (request targets fetch would normalize). */
  raw?: { target: string; lines: string[] };
}

/** What a generated request resolves against: the node, its credentials, and the ids that exist so far. */
export interface FuzzContext {
  base: string;
  publicUrl: string;
  port: number;
  /** Credential label → headers, and the subject it acts as. */
  credentials: Record<string, { headers: Record<string, string>; sub: string }>;
  /** Named lists of ids that exist (or existed): order, sku, customer, subscription, apikey, counter, source… */
  pools: Record<string, string[]>;
  inbound: { source: string; secret: string };
  broker: { currentSigningKey: string; nextSigningKey: string };
  actorHostSecret: string;
  /** The console's CSRF token for the admin cookie session. */
  csrf: string;
  usedWebhookIds: string[];
  dlqIds(): Promise<string[]>;
}

export interface EndpointSpec {
  /** `METHOD /template`, as openapi.json writes paths. */
  id: string;
  method: string;
  template: string;
  source: "openapi" | "gateway";
  arbitrary: fc.Arbitrary<FuzzRequest>;
}

// --- credentials -----------------------------------------------------------------------------------------------

/** Credential labels every endpoint draws from, weighted toward ones that get past authentication. */
export const authLabels: Array<[string, number]> = [
  ["none", 3],
  ["jwt:admin", 4],
  ["jwt:alice", 4],
  ["jwt:bob", 2],
  ["jwt:alice-read", 1],
  ["jwt:inventory", 2],
  ["jwt:webhooks", 1],
  ["jwt:noscope", 1],
  ["jwt:expired", 1],
  ["jwt:wrong-key", 1],
  ["jwt:alg-none", 1],
  ["jwt:no-exp", 1],
  ["jwt:scope-array", 1],
  ["jwt:weird-sub", 1],
  ["jwt:huge", 1],
  ["apikey:admin", 1],
  ["apikey:alice", 1],
  ["apikey:revoked", 1],
  ["apikey:malformed", 1],
  ["basic", 1],
  ["bearer-empty", 1],
  ["both", 1],
];

const garbageAuthorization = headerValue(
  fc.oneof(
    hostileString.map((value) => `Bearer ${value}`),
    fc.constantFrom(
      "Bearer",
      "Bearer  ",
      "bearer x.y.z",
      "BEARER a.b.c",
      "Token abc",
      "Bearer a.b",
      "Bearer a.b.c.d",
      "Bearer ....",
      `Bearer ${"A".repeat(9_000)}`,
      "Bearer eyJhbGciOiJIUzI1NiJ9.e30.",
      "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLy4uL2V0Yy9wYXNzd2QifQ.e30.AA",
      "Negotiate YII=",
    ),
  ),
).map((value) => `raw:${value}`);

export const authArbitrary: fc.Arbitrary<string> = fc.oneof(
  ...authLabels.map(([label, weight]) => ({ weight, arbitrary: fc.constant(label) })),
  { weight: 2, arbitrary: garbageAuthorization },
);

const consoleAuth = fc.oneof(
  { weight: 4, arbitrary: authArbitrary },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "cookie:admin",
      "cookie:alice",
      "cookie:garbage",
      "query:admin",
      "query:garbage",
    ),
  },
);

// --- headers ---------------------------------------------------------------------------------------------------

const idempotencyKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("k1", "k2", "k3") },
  { weight: 2, arbitrary: fc.uuid() },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "",
      " ",
      "a".repeat(255),
      "a".repeat(256),
      "é",
      "a\tb",
      "key with spaces",
      "__proto__",
      "../../x",
      "%00",
      "k1 ",
      "K1",
    ),
  },
  { weight: 1, arbitrary: headerValue(fc.string({ unit: "binary", maxLength: 30 })) },
);

const forwardedFor = fc.constantFrom(
  "1.2.3.4",
  "1.2.3.4, 10.0.0.1",
  "10.0.0.1, 1.2.3.4, 127.0.0.1",
  "garbage",
  "::1",
  "999.999.999.999",
  ", , ,",
  "unknown",
  "[::1]:80",
  "127.0.0.1",
  "0x7f.1",
  "2130706433",
  "fe80::1%eth0",
  "1.1.1.1,".repeat(300),
  "_hidden, 1.2.3.4",
  "for=1.2.3.4",
);

const extraHeaderNames = fc.constantFrom(
  "x-forwarded-proto",
  "x-forwarded-host",
  "forwarded",
  "x-real-ip",
  "cf-connecting-ip",
  "x-http-method-override",
  "x-original-url",
  "x-rewrite-url",
  "x-request-id",
  "traceparent",
  "tracestate",
  "origin",
  "referer",
  "accept",
  "accept-encoding",
  "x-api-key",
  "cookie",
  "upstash-signature",
  "upstash-retried",
  "webhook-id",
  "x-edgewise-timestamp",
  "content-encoding",
  "if-none-match",
  "range",
  "x-cache",
  "__proto__",
);

const extraHeaderValue = fc.oneof(
  headerValue(hostileString),
  fc.constantFrom(
    "https",
    "evil.example",
    "DELETE",
    "/v1/api-keys",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-00000000000000000000000000000000-0000000000000000-00",
    `ff-${"f".repeat(200)}`,
    "https://evil.example",
    "null",
    "gzip",
    "bytes=0-1",
    "edgewise_console=garbage",
    "-1",
    "99999999999999999999",
  ),
);

export const headersArbitrary: fc.Arbitrary<Array<[string, string]>> = fc
  .record({
    idempotency: fc.option(idempotencyKey, { freq: 3 }),
    forwarded: fc.option(forwardedFor, { freq: 3 }),
    extra: fc.array(fc.tuple(extraHeaderNames, extraHeaderValue), { maxLength: 2 }),
  })
  .map(({ idempotency, forwarded, extra }) => {
    const headers: Array<[string, string]> = [];
    if (idempotency !== null) headers.push(["idempotency-key", idempotency]);
    if (forwarded !== null) headers.push(["x-forwarded-for", forwarded]);
    headers.push(...extra);
    return headers;
  });

// --- bodies ----------------------------------------------------------------------------------------------------

const withType = (body: fc.Arbitrary<BodySpec>): fc.Arbitrary<BodySpec> =>
  fc
    .tuple(body, fc.option(fc.oneof(contentTypes, fc.constant(null)), { freq: 6 }))
    .map(([spec, type]) => (type === null ? spec : { ...spec, type }));

/** Valid from the schema; or the same with fields broken, JSON text tricks, unrelated bytes, sometimes mislabeled. */
export function bodyAspect(schema: Record<string, unknown>, hints: Hints): Aspect<BodySpec | undefined> {
  const valid = fromSchema(schema, hints);
  return {
    valid: valid.map((json) => ({ json })),
    fuzz: withType(
      fc.oneof(
        { weight: 1, arbitrary: valid.map((json) => ({ json })) },
        { weight: 6, arbitrary: mutated(valid).map((json) => ({ json })) },
        { weight: 2, arbitrary: rawJsonText(valid).map((text) => ({ text })) },
        { weight: 2, arbitrary: randomBody },
      ),
    ),
  };
}

/** For routes that take no body: mostly none, sometimes one anyway. */
const strayBody = fc.option(withType(randomBody), { freq: 5 }).map((body) => body ?? undefined);

// --- parameters ------------------------------------------------------------------------------------------------

/**
 * Each part of a request (path, query, headers, credentials, body, signature) has a valid arbitrary (what an
 * honest client sends: ids that exist, the schema's values, a credential that may pass) and a fuzz arbitrary.
 */
export interface Aspect<T> {
  valid: fc.Arbitrary<T>;
  fuzz: fc.Arbitrary<T>;
}

/** Which pool of existing ids a path or query parameter draws from. */
function poolFor(template: string, name: string): string | undefined {
  if (name === "id") {
    if (template.startsWith("/v1/webhooks/subscriptions")) return "subscription";
    if (template.startsWith("/v1/api-keys")) return "apikey";
    return undefined;
  }
  const pools: Record<string, string> = {
    sku: "sku",
    customerId: "customer",
    orderId: "order",
    key: "counter",
    source: "source",
    dlqId: "dlq",
    traceId: "trace",
    type: "actorType",
  };
  return pools[name];
}

function paramAspect(
  template: string,
  name: string,
  schema: Record<string, unknown> | undefined,
): Aspect<string | Ref> {
  const pool = poolFor(template, name);
  const fromSpec = schema
    ? fromSchema(schema).map((value) => safeEncode(String(value)))
    : fc.stringMatching(/^[A-Za-z0-9._~-]{1,40}$/);
  const valid: Array<fc.WeightedArbitrary<string | Ref>> = [{ weight: 1, arbitrary: fromSpec }];
  if (pool) valid.push({ weight: 4, arbitrary: ref(pool) });
  if (name === "customerId") valid.push({ weight: 5, arbitrary: fc.constant(new Ref("sub", 0)) });
  return {
    valid: fc.oneof(...valid),
    fuzz: fc.oneof({ weight: 3, arbitrary: hostileSegment }, { weight: 2, arbitrary: fc.oneof(...valid) }),
  };
}

const hostileQueryName = fc.constantFrom(
  "__proto__",
  "constructor",
  "__proto__[admin]",
  "limit[]",
  "customerId[]",
  "q",
  "limit",
  "customerId",
  "status",
  "token",
  "",
  "%00",
  "a".repeat(300),
);

type Query = Array<[string, string | Ref]>;

function queryAspect(
  template: string,
  params: Array<{ name: string; schema?: Record<string, unknown> }>,
): Aspect<Query> {
  const build = (fuzz: boolean) => {
    const each = params.map((param) => {
      const pool = poolFor(template, param.name);
      const options: Array<fc.WeightedArbitrary<string | Ref>> = [];
      if (param.schema) {
        options.push({
          weight: 3,
          arbitrary: fromSchema(param.schema).map((value) => safeEncode(String(value))),
        });
      }
      if (pool) options.push({ weight: 2, arbitrary: ref(pool) });
      if (param.name === "customerId") options.push({ weight: 2, arbitrary: fc.constant(new Ref("sub", 0)) });
      if (fuzz || options.length === 0) options.push({ weight: 3, arbitrary: hostileQueryValue });
      return fc
        .option(fc.oneof(...options), { freq: 2 })
        .map((value): Query => (value === null ? [] : [[param.name, value]]));
    });
    const extra = fuzz
      ? fc.option(fc.array(fc.tuple(hostileQueryName, hostileQueryValue), { minLength: 1, maxLength: 2 }), {
          freq: 3,
        })
      : fc.constant(null);
    return fc
      .tuple(fc.tuple(...each), extra)
      .map(([known, more]): Query => [...known.flat(), ...(more ?? [])]);
  };
  return { valid: build(false), fuzz: build(true) };
}

const noQuery: Aspect<Query> = { valid: fc.constant([]), fuzz: fc.constant([]) };

// --- building one endpoint -------------------------------------------------------------------------------------

interface Shape {
  params?: Record<string, Aspect<string | Ref>>;
  query?: Aspect<Query>;
  body?: Aspect<BodySpec | undefined>;
  auth?: Aspect<string>;
  signature?: Aspect<string | undefined>;
  headers?: Aspect<Array<[string, string]>>;
}

const benignHeaders = fc
  .record({
    idempotency: fc.option(fc.oneof(fc.constantFrom("k1", "k2", "k3"), fc.uuid()), { freq: 3 }),
    forwarded: fc.option(fc.constantFrom("1.2.3.4", "203.0.113.9, 10.0.0.1"), { freq: 3 }),
  })
  .map(({ idempotency, forwarded }) => {
    const headers: Array<[string, string]> = [];
    if (idempotency !== null) headers.push(["idempotency-key", idempotency]);
    if (forwarded !== null) headers.push(["x-forwarded-for", forwarded]);
    return headers;
  });

export const headersAspect: Aspect<Array<[string, string]>> = {
  valid: benignHeaders,
  fuzz: headersArbitrary,
};

/** Credentials that can pass authentication; whether they may act is for the route to say. */
const goodAuth = fc.constantFrom(
  "jwt:admin",
  "jwt:admin",
  "jwt:alice",
  "jwt:alice",
  "jwt:bob",
  "jwt:inventory",
  "jwt:webhooks",
  "apikey:admin",
  "apikey:alice",
);
export const authAspect: Aspect<string> = { valid: goodAuth, fuzz: authArbitrary };

type Parts = {
  path: Array<string | Ref>;
  query: Query;
  headers: Array<[string, string]>;
  auth: string;
  body: BodySpec | undefined;
  signature: string | undefined;
};

/**
 * A third of the requests are valid in every part, half are valid but for one part (the fault), and the rest are
 * fuzzed in every part: so routes are reached past authentication and validation, and each check is hit alone.
 */
function endpoint(
  method: string,
  template: string,
  source: EndpointSpec["source"],
  shape: Shape,
): EndpointSpec {
  const segments = template.split("/").slice(1);
  const params = segments.map((segment): Aspect<string | Ref> => {
    const name = /^\{(.+)\}$/.exec(segment)?.[1];
    if (name === undefined) return { valid: fc.constant(segment), fuzz: fc.constant(segment) };
    return shape.params?.[name] ?? paramAspect(template, name, undefined);
  });
  const bodyless = method === "GET" || method === "HEAD";
  const none = { valid: fc.constant(undefined), fuzz: fc.constant(undefined) };
  const aspects = {
    path: {
      valid: fc.tuple(...params.map((param) => param.valid)),
      fuzz: fc.tuple(...params.map((param) => param.fuzz)),
    },
    query: shape.query ?? noQuery,
    headers: shape.headers ?? headersAspect,
    auth: shape.auth ?? authAspect,
    body: bodyless ? none : (shape.body ?? { valid: fc.constant(undefined), fuzz: strayBody }),
    signature: shape.signature ?? none,
  };
  const pick = (which: "valid" | "fuzz") =>
    fc.record({
      path: aspects.path[which],
      query: aspects.query[which],
      headers: aspects.headers[which],
      auth: aspects.auth[which],
      body: aspects.body[which],
      signature: aspects.signature[which],
    }) as fc.Arbitrary<Parts>;
  const faults = (Object.keys(aspects) as Array<keyof Parts>).filter(
    (key) =>
      !(key === "path" && segments.every((segment) => !segment.startsWith("{"))) &&
      aspects[key] !== none &&
      aspects[key] !== noQuery,
  );
  const arbitrary = fc
    .oneof(
      { weight: 2, arbitrary: pick("valid") },
      {
        weight: 3,
        arbitrary: fc
          .tuple(pick("valid"), pick("fuzz"), fc.constantFrom(...faults))
          .map(([valid, fuzz, fault]) => ({ ...valid, [fault]: fuzz[fault] }) as Parts),
      },
      { weight: 1, arbitrary: pick("fuzz") },
    )
    .map(({ path, query, headers, auth, body, signature }) => {
      const request: FuzzRequest = { endpoint: `${method} ${template}`, method, path, query, headers, auth };
      if (body !== undefined) request.body = body;
      if (signature !== undefined) request.signature = signature;
      return request;
    });
  return { id: `${method} ${template}`, method, template, source, arbitrary };
}

interface OpenApiParameter {
  in: string;
  name: string;
  required?: boolean;
  schema?: Record<string, unknown>;
}
interface OpenApiOperation {
  parameters?: OpenApiParameter[];
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
}

/** Hints: field names whose values should often name something that exists, or the caller itself. */
export function bodyHints(receiverUrl: string): Hints {
  return {
    customerId: fc.oneof(
      { weight: 3, arbitrary: fc.constant(new Ref("sub", 0)) },
      { weight: 1, arbitrary: ref("customer") },
    ),
    sku: ref("sku"),
    url: fc.oneof(
      { weight: 6, arbitrary: fc.constant(receiverUrl) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          "http://127.0.0.1:1/",
          "ftp://example.com/",
          "http://user:pass@127.0.0.1/",
          "http://[::1]/",
          "http://169.254.169.254/",
          "http://0x7f.1/",
          "javascript:alert(1)",
          "data:text/html,<script>",
        ),
      },
    ),
    sub: fc.oneof(fc.constantFrom("alice", "bob", "admin"), hostileString),
  };
}

const inboundSignature: Aspect<string | undefined> = {
  valid: fc.constant("valid"),
  fuzz: fc.constantFrom(
    "none",
    "garbage",
    "stale",
    "future",
    "wrong-secret",
    "replay",
    "several",
    "bad-id",
    "bad-timestamp",
  ),
};

/**
 * Special cases of openapi.json routes, by id: what the document cannot say (a signature over the body). A route
 * without one gets the generic arbitrary from its parameters and request body.
 */
function openApiOverrides(hints: Hints): Record<string, Shape> {
  const restock = toJsonSchema(RestockedPayload, { errorMode: "ignore" }) as Record<string, unknown>;
  return {
    "POST /webhooks/inbound/{source}": { body: bodyAspect(restock, hints), signature: inboundSignature },
  };
}

/** One endpoint per operation of openapi.json. A parameter location or schema the fuzzer cannot read throws. */
export function openApiEndpoints(
  document: { paths: Record<string, Record<string, OpenApiOperation>> },
  hints: Hints,
): EndpointSpec[] {
  const overrides = openApiOverrides(hints);
  const specs: EndpointSpec[] = [];
  for (const [template, operations] of Object.entries(document.paths)) {
    for (const [lower, operation] of Object.entries(operations)) {
      const method = lower.toUpperCase();
      const id = `${method} ${template}`;
      const parameters = operation.parameters ?? [];
      for (const parameter of parameters) {
        // Headers: an optional one (Idempotency-Key) is left out; a required one must come from an override
        // (the inbound webhook's signature headers).
        if (parameter.in === "header" && (!parameter.required || overrides[id]?.signature)) continue;
        if (parameter.in !== "path" && parameter.in !== "query") {
          throw new Error(`fuzz: ${id}: a parameter in ${parameter.in} has no arbitrary`);
        }
      }
      const params: Record<string, Aspect<string | Ref>> = {};
      for (const parameter of parameters.filter((p) => p.in === "path")) {
        params[parameter.name] = paramAspect(template, parameter.name, parameter.schema);
      }
      const query = parameters.filter((p) => p.in === "query");
      const content = operation.requestBody?.content;
      let body: Aspect<BodySpec | undefined> | undefined;
      if (content) {
        const schema = content["application/json"]?.schema;
        if (!schema || Object.keys(content).length !== 1) {
          throw new Error(`fuzz: ${id}: request body ${Object.keys(content).join(", ")} has no arbitrary`);
        }
        body = bodyAspect(schema, hints);
      }
      specs.push(
        endpoint(method, template, "openapi", {
          params,
          ...(query.length > 0 ? { query: queryAspect(template, query) } : {}),
          ...(body ? { body } : {}),
          ...overrides[id],
        }),
      );
    }
  }
  return specs;
}

// --- the gateway's own routes, outside openapi.json ------------------------------------------------------------

/** Message types the actors and consumers know, so a signed envelope can name one and fail only on its data. */
const messageTypes = [
  "Place",
  "Get",
  "Cancel",
  "Put",
  "Increment",
  "StockReserved",
  "StockRejected",
  "PaymentCaptured",
  "PaymentFailed",
  "PaymentRefunded",
  "PaymentRequested",
  "RefundRequested",
  "Restock",
  "OrderPlaced",
  "OrderConfirmed",
  "OrderRejected",
  "OrderCancelled",
  "StockChanged",
  "WebhookDelivery",
];

const actorTypes = ["order", "inventory", "loyalty", "counter", "billing", "readside", "webhooks"];

/**
 * Bodies for the signed internal endpoints. With a valid signature these come from the broker or a gateway, whose
 * well-formed messages are the system's own traffic (and answer 5xx by protocol when a handler wants a retry); so a
 * validly signed body here is always malformed somewhere: not JSON, not an envelope, the wrong target, an unknown
 * type, or data that is not an object (a string, a number, null). Unsigned or badly signed, any body goes, a
 * well-formed one included.
 */
const envelopeBody: fc.Arbitrary<BodySpec> = fc
  .record({
    kind: fc.constantFrom(
      "not-json",
      "random-json",
      "broken-envelope",
      "wrong-target",
      "unknown-type",
      "bad-data",
    ),
    type: fc.constantFrom(...messageTypes),
    // Not an object, nor an array (valibot's `object` schemas take arrays: `Cancel` with `[]` is well-formed).
    data: hostileValue.filter((value) => value === null || typeof value !== "object"),
    text: fc.string({ unit: "binary", maxLength: 100 }),
    json: fc.jsonValue({ maxDepth: 3 }),
    broken: fc.constantFrom("specversion", "id", "time", "type", "source", "target", "traceparent"),
    hostile: hostileValue,
  })
  .map(({ kind, type, data, text, json, broken, hostile }): BodySpec => {
    const envelope: Record<string, unknown> = {
      specversion: "1.0",
      id: "fuzz-message",
      source: "edgewise://fuzz",
      type,
      time: "2026-01-01T00:00:00.000Z",
      datacontenttype: "application/json",
      target: new Ref("target", 0),
      data: {},
    };
    switch (kind) {
      case "not-json":
        return { text };
      case "random-json":
        return { json };
      case "broken-envelope":
        envelope[broken] = hostile;
        envelope.data = data;
        return { json: envelope };
      case "wrong-target":
        envelope.target = "order/someone-else";
        envelope.data = data;
        return { json: envelope };
      case "unknown-type":
        envelope.type = `Fuzz${type}`;
        return { json: envelope };
      default:
        envelope.data = data;
        return { json: envelope };
    }
  });

const deliverySignature: Aspect<string | undefined> = {
  valid: fc.constant("valid"),
  fuzz: fc.constantFrom(
    "valid",
    "none",
    "garbage",
    "wrong-url",
    "wrong-body",
    "expired",
    "other-key",
    "next-key",
    "alg-none",
  ),
};

const actorHostSignature: Aspect<string | undefined> = {
  valid: fc.constant("valid"),
  fuzz: fc.constantFrom("valid", "none", "garbage", "stale", "wrong-path", "uppercase"),
};

const signedBody: Aspect<BodySpec | undefined> = {
  valid: envelopeBody,
  fuzz: fc.oneof({ weight: 2, arbitrary: envelopeBody }, { weight: 1, arbitrary: withType(randomBody) }),
};

/** The internal endpoints prove themselves by signature; a caller's credentials are noise there. */
const internalAuth: Aspect<string> = { valid: fc.constant("none"), fuzz: authArbitrary };

const consoleForm = (valid: boolean) =>
  fc
    .record({
      csrf: valid ? fc.constant("valid") : fc.constantFrom("valid", "missing", "wrong", "empty"),
      extra: fc.option(fc.tuple(hostileQueryName, hostileString), { freq: valid ? 1_000 : 3 }),
    })
    .map(({ csrf, extra }): BodySpec => {
      const form: Record<string, string | Ref> = {};
      if (csrf === "valid") form.csrf = new Ref("csrf", 0);
      if (csrf === "wrong") form.csrf = "0".repeat(64);
      if (csrf === "empty") form.csrf = "";
      if (extra) form[extra[0]] = extra[1];
      return { form };
    });

const consoleAspect: Aspect<string> = {
  valid: fc.constantFrom("cookie:admin", "cookie:admin", "jwt:admin", "apikey:admin", "query:admin"),
  fuzz: consoleAuth,
};

const pick = <T>(valid: fc.Arbitrary<T>, fuzz: fc.Arbitrary<T>): Aspect<T> => ({
  valid,
  fuzz: fc.oneof(valid, fuzz),
});

export function gatewayEndpoints(hints: Hints): EndpointSpec[] {
  const apiKeyBody = toJsonSchema(CreateApiKeyBody, { errorMode: "ignore" }) as Record<string, unknown>;
  const consoleBody: Aspect<BodySpec | undefined> = {
    valid: consoleForm(true),
    fuzz: fc.oneof(
      { weight: 5, arbitrary: consoleForm(false) },
      { weight: 1, arbitrary: withType(randomBody) },
    ),
  };
  const consoleGet = (template: string, params: Shape["params"] = {}, query?: Shape["query"]) =>
    endpoint("GET", template, "gateway", { auth: consoleAspect, params, ...(query ? { query } : {}) });
  const consolePost = (template: string, params: Shape["params"] = {}) =>
    endpoint("POST", template, "gateway", { auth: consoleAspect, params, body: consoleBody });
  const actorType = pick<string | Ref>(
    fc.constantFrom("order", "inventory", "loyalty", "counter"),
    hostileSegment,
  );
  const actorKey = pick<string | Ref>(
    fc.oneof(ref("order"), ref("sku"), ref("customer"), ref("counter")),
    hostileSegment,
  );
  return [
    endpoint("GET", "/healthz", "gateway", {}),
    endpoint("GET", "/readyz", "gateway", {}),
    endpoint("GET", "/openapi.json", "gateway", {}),
    endpoint("GET", "/metrics", "gateway", {
      auth: { valid: fc.constant("metrics"), fuzz: fc.oneof(authArbitrary, fc.constant("metrics-wrong")) },
    }),
    endpoint("POST", "/_edgewise/deliver/{type}/{key}", "gateway", {
      params: {
        type: pick<string | Ref>(fc.constantFrom(...actorTypes), hostileSegment),
        key: pick<string | Ref>(
          fc.oneof(
            ref("order"),
            ref("sku"),
            ref("customer"),
            fc.constantFrom("events", "orders", "all", "outbound", "c1"),
          ),
          hostileSegment,
        ),
      },
      body: signedBody,
      signature: deliverySignature,
      auth: internalAuth,
    }),
    endpoint("POST", actorHostPaths.ask, "gateway", {
      body: signedBody,
      signature: actorHostSignature,
      auth: internalAuth,
    }),
    endpoint("POST", actorHostPaths.receive, "gateway", {
      body: signedBody,
      signature: actorHostSignature,
      auth: internalAuth,
    }),
    endpoint("POST", "/v1/api-keys", "gateway", { body: bodyAspect(apiKeyBody, hints) }),
    endpoint("DELETE", "/v1/api-keys/{id}", "gateway", {}),
    consoleGet("/_console", {}, queryAspect("/_console", [{ name: "notice" }])),
    consoleGet("/_console/static/console.js"),
    consoleGet("/_console/static/console.css"),
    consoleGet("/_console/events/stream"),
    consoleGet("/_console/actors", {}, queryAspect("/_console/actors", [{ name: "type" }, { name: "key" }])),
    consoleGet("/_console/actors/{type}/{key}", { type: actorType, key: actorKey }),
    consoleGet("/_console/traces/{traceId}", {
      traceId: pick<string | Ref>(
        fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), ref("trace")),
        hostileSegment,
      ),
    }),
    // Purge is the one action at `/_console/dlq/{action}`; any other is a 404.
    consolePost("/_console/dlq/{action}", {
      action: pick<string | Ref>(
        fc.constant("purge"),
        fc.oneof(fc.constantFrom("drop", "retry", "PURGE"), hostileSegment),
      ),
    }),
    consolePost("/_console/dlq/{dlqId}/retry"),
    consolePost("/_console/dlq/{dlqId}/delete"),
    consolePost("/_console/logout"),
  ];
}

/** Requests to routes that do not exist, or a known route with another method. */
export function strayEndpoint(templates: string[]): EndpointSpec {
  const method = fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND");
  const path = fc.oneof(
    fc.tuple(fc.constantFrom(...templates), hostileSegment).map(([template, segment]) =>
      template
        .split("/")
        .slice(1)
        .map((part) => (part.startsWith("{") ? segment : part)),
    ),
    fc
      .tuple(
        fc.constantFrom("v1", "v2", "_edgewise", "_console", "webhooks", "V1", "", ".well-known", "admin"),
        fc.array(hostileSegment, { minLength: 0, maxLength: 3 }),
      )
      .map(([first, rest]) => [first, ...rest]),
  );
  const arbitrary = fc
    .record({ method, path, headers: headersArbitrary, auth: authArbitrary, body: strayBody })
    .map(({ method, path, headers, auth, body }) => {
      const request: FuzzRequest = { endpoint: "* (no such route)", method, path, query: [], headers, auth };
      if (body !== undefined && method !== "GET" && method !== "HEAD") request.body = body;
      return request;
    });
  return { id: "* (no such route)", method: "*", template: "*", source: "gateway", arbitrary };
}

/** Request targets a client library would normalize, sent byte for byte over a socket. */
export const rawEndpoint: EndpointSpec = {
  id: "RAW (request target)",
  method: "*",
  template: "*",
  source: "gateway",
  arbitrary: fc
    .record({
      method: fc.constantFrom("GET", "POST", "DELETE", "PUT", "get", "FUZZ"),
      target: fc.oneof(
        fc.constantFrom(
          "/v1/../v1/api-keys",
          "/v1/orders/../api-keys",
          "/v1/inventory/../../_console",
          "/_edgewise/deliver/../../v1/api-keys",
          "/_console/..%2f..%2fv1/api-keys",
          "/_console/static/../../v1/api-keys",
          "/_console/static/..%2f..%2f..%2fetc%2fpasswd",
          "//v1//orders",
          "/v1/orders/",
          "/v1/orders?limit=1#frag",
          "/v1/inventory/a b",
          "/v1/inventory/\\..\\..\\",
          "/v1/inventory/%",
          "/v1/inventory/\u00e9",
          "http://evil.example/v1/orders",
          "http://127.0.0.1/v1/api-keys",
          "*",
          "v1/orders",
          "/%00",
          "/v1/orders/%00",
          "/healthz?%",
          "/openapi.json/..",
          "/_edgewise/actors/ask/../receive",
          `/v1/orders/${"a".repeat(9_000)}`,
        ),
        fc
          .tuple(
            fc.constantFrom(
              "/v1/orders/",
              "/v1/inventory/",
              "/v1/accounts/",
              "/_console/actors/order/",
              "/_edgewise/",
            ),
            hostileSegment,
          )
          .map(([prefix, segment]) => prefix + segment),
      ),
      lines: fc.constantFrom<string[]>(
        [],
        [],
        ["Host: evil.example"],
        ["X-Forwarded-For: 1.2.3.4"],
        ["Content-Length: 2", "Transfer-Encoding: chunked"],
        ["Transfer-Encoding: chunked", "Transfer-Encoding: identity"],
        ["Content-Length: 0", "Content-Length: 5"],
        ["Content-Length: -1"],
        ["Host: a", "Host: b"],
        ["X-HTTP-Method-Override: DELETE"],
      ),
      auth: authArbitrary,
    })
    .map(({ method, target, lines, auth }) => ({
      endpoint: "RAW (request target)",
      method,
      path: [],
      query: [],
      headers: [],
      auth,
      raw: { target, lines },
    })),
};

// --- sending ---------------------------------------------------------------------------------------------------

export interface Outcome {
  status: number;
  text: string;
  ms: number;
  /** What went on the wire: method and target, for the report. */
  sent: string;
  /** The parsed JSON body, when it was JSON. */
  json?: unknown;
  /**
   * `app` when the gateway answered (its responses all carry X-Request-Id); `runtime` when Bun's HTTP server did,
   * before any app code ran (a request line it cannot parse), or closed the connection (status 0).
   */
  origin: "app" | "runtime" | "client";
}

function subjectOf(ctx: FuzzContext, auth: string): string {
  return ctx.credentials[auth]?.sub ?? "carol";
}

function resolver(ctx: FuzzContext, request: FuzzRequest, extra: Record<string, string>, dlq: string[]) {
  return (reference: Ref): string => {
    if (reference.pool === "sub") return subjectOf(ctx, request.auth);
    if (reference.pool in extra) return extra[reference.pool] as string;
    const pool = reference.pool === "dlq" ? dlq : (ctx.pools[reference.pool] ?? []);
    return pool.length === 0 ? `none-${reference.index}` : (pool[reference.index % pool.length] as string);
  };
}

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64url");

function upstashJwt(key: string, claims: Record<string, unknown>, alg = "HS256"): string {
  const input = `${b64url(JSON.stringify({ alg, typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  if (alg === "none") return `${input}.`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}

async function signatureHeaders(
  ctx: FuzzContext,
  request: FuzzRequest,
  url: URL,
  body: Uint8Array,
): Promise<Record<string, string>> {
  const mode = request.signature;
  if (mode === undefined || mode === "none") return {};
  if (request.endpoint.startsWith("POST /_edgewise/deliver/")) {
    const target = `${ctx.publicUrl}${url.pathname}`;
    const now = Math.floor(Date.now() / 1000);
    const claims = (sub: string, hashOf: Uint8Array, offset = 0) => ({
      iss: "Upstash",
      sub,
      iat: now + offset,
      nbf: now + offset,
      exp: now + offset + 300,
      jti: `jwt_${crypto.randomUUID()}`,
      body: createHash("sha256").update(hashOf).digest("base64url"),
    });
    const key = ctx.broker.currentSigningKey;
    switch (mode) {
      case "valid":
        return { "upstash-signature": await createSigner(key)(target, body) };
      case "next-key":
        return { "upstash-signature": await createSigner(ctx.broker.nextSigningKey)(target, body) };
      case "wrong-url":
        return {
          "upstash-signature": await createSigner(key)(`${ctx.publicUrl}/_edgewise/deliver/order/x`, body),
        };
      case "wrong-body":
        return { "upstash-signature": upstashJwt(key, claims(target, new TextEncoder().encode("{}x"))) };
      case "expired":
        return { "upstash-signature": upstashJwt(key, claims(target, body, -3_600)) };
      case "other-key":
        return { "upstash-signature": upstashJwt("sig_not_the_key", claims(target, body)) };
      case "alg-none":
        return { "upstash-signature": upstashJwt(key, claims(target, body), "none") };
      default:
        return { "upstash-signature": "garbage.garbage.garbage" };
    }
  }
  if (request.endpoint.startsWith("POST /_edgewise/actors/")) {
    const path = url.pathname;
    const timestamp = String(mode === "stale" ? Date.now() - 120_000 : Date.now());
    const hmac = (message: string) => createHmac("sha256", ctx.actorHostSecret).update(message).digest("hex");
    const text = new TextDecoder().decode(body);
    switch (mode) {
      case "valid":
      case "stale":
        return {
          "x-edgewise-timestamp": timestamp,
          "x-edgewise-signature": hmac(signedMessage(path, timestamp, text)),
        };
      case "wrong-path": {
        const other = path === actorHostPaths.ask ? actorHostPaths.receive : actorHostPaths.ask;
        return {
          "x-edgewise-timestamp": timestamp,
          "x-edgewise-signature": hmac(signedMessage(other, timestamp, text)),
        };
      }
      case "uppercase":
        return {
          "x-edgewise-timestamp": timestamp,
          "x-edgewise-signature": hmac(signedMessage(path, timestamp, text)).toUpperCase(),
        };
      default:
        return { "x-edgewise-timestamp": "abc", "x-edgewise-signature": "00" };
    }
  }
  // Inbound webhooks (Standard Webhooks).
  const text = new TextDecoder().decode(body);
  const fresh = `msg_${crypto.randomUUID()}`;
  const replayed = ctx.usedWebhookIds[ctx.usedWebhookIds.length - 1];
  const id = mode === "replay" && replayed ? replayed : mode === "bad-id" ? "" : fresh;
  const seconds = Math.floor(Date.now() / 1000);
  const timestamp = mode === "stale" ? seconds - 600 : mode === "future" ? seconds + 600 : seconds;
  const secret = mode === "wrong-secret" ? `whsec_${btoa("not the secret, not at all")}` : ctx.inbound.secret;
  const signature = await signWebhook({ secret, id, timestamp, body: text });
  switch (mode) {
    case "garbage":
      return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": "v1,AAAA" };
    case "several":
      return {
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": `v1,AAAA v1a,${"B".repeat(40)} ${signature} v2,x`,
      };
    case "bad-timestamp":
      return { "webhook-id": id, "webhook-timestamp": "1e10", "webhook-signature": signature };
    default:
      if (mode === "valid") ctx.usedWebhookIds.push(id);
      return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
  }
}

function credentialHeaders(ctx: FuzzContext, auth: string): Record<string, string> {
  if (auth.startsWith("raw:")) return { authorization: auth.slice(4) };
  return ctx.credentials[auth]?.headers ?? {};
}

function encodeBody(
  body: BodySpec | undefined,
  resolve: (r: Ref) => string,
): { bytes?: Uint8Array<ArrayBuffer>; type?: string } {
  if (!body) return {};
  let bytes: Uint8Array<ArrayBuffer>;
  let type: string;
  if ("json" in body) {
    bytes = new TextEncoder().encode(JSON.stringify(resolveRefs(body.json, resolve)) ?? "null");
    type = "application/json";
  } else if ("text" in body) {
    bytes = new TextEncoder().encode(body.text);
    type = "application/json";
  } else if ("bytes" in body) {
    bytes = body.bytes;
    type = "application/octet-stream";
  } else {
    const form = resolveRefs(body.form, resolve) as Record<string, string>;
    bytes = new TextEncoder().encode(
      Object.entries(form)
        .map(([k, v]) => `${safeEncode(k)}=${safeEncode(v)}`)
        .join("&"),
    );
    type = "application/x-www-form-urlencoded";
  }
  if (body.type === null) return { bytes };
  return { bytes, type: body.type ?? type };
}

/** Resolves the request against what exists now, signs what needs a signature, and sends it. */
export async function send(ctx: FuzzContext, request: FuzzRequest): Promise<Outcome> {
  const dlq = request.endpoint.includes("{dlqId}") ? await ctx.dlqIds() : [];
  const started = performance.now();
  if (request.raw) return await sendRaw(ctx, request, started);

  // The delivery target named inside the envelope is the URL's own, unless the arbitrary chose another.
  const plain = resolver(ctx, request, {}, dlq);
  const segments = request.path.map((part) => (part instanceof Ref ? safeEncode(plain(part)) : part));
  let pathname = `/${segments.join("/")}`;
  const pairs = [...request.query];
  // The console also takes a token once as `?token=` (it becomes a cookie).
  if (request.auth.startsWith("query:")) {
    const admin = ctx.credentials["jwt:admin"]?.headers.authorization ?? "";
    pairs.push(["token", request.auth === "query:admin" ? admin.slice("Bearer ".length) : "garbage"]);
  }
  const query = pairs
    .map(([name, value]) => `${name}=${value instanceof Ref ? safeEncode(plain(value)) : value}`)
    .join("&");
  if (query) pathname += `?${query}`;
  const url = new URL(`${ctx.base}${pathname}`);
  const deliveryTarget = request.endpoint.startsWith("POST /_edgewise/deliver/")
    ? `${decodeSafe(segments[2] ?? "")}/${decodeSafe(segments[3] ?? "")}`
    : "counter/c1";
  const resolve = resolver(ctx, request, { target: deliveryTarget, csrf: ctx.csrf }, dlq);
  const { bytes, type } = encodeBody(request.body, resolve);

  const headers = new Headers();
  for (const [name, value] of request.headers) {
    try {
      headers.append(name, value);
    } catch {
      // A name fetch refuses (e.g. `__proto__` has no illegal characters, but others may): not sent.
    }
  }
  for (const [name, value] of Object.entries(credentialHeaders(ctx, request.auth))) headers.set(name, value);
  if (type !== undefined) headers.set("content-type", type);
  for (const [name, value] of Object.entries(
    await signatureHeaders(ctx, request, url, bytes ?? new Uint8Array()),
  )) {
    headers.set(name, value);
  }
  const sent = `${request.method} ${url.pathname}${url.search}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(20_000),
      ...(bytes !== undefined ? { body: bytes } : {}),
    });
  } catch (error) {
    return {
      status: -1,
      text: `no response: ${String(error)}`,
      ms: performance.now() - started,
      sent,
      origin: "client",
    };
  }
  // A live event stream (the console's) never ends: its first frame is the answer, then the client goes away.
  const text = response.headers.get("content-type")?.startsWith("text/event-stream")
    ? await firstChunk(response)
    : await response.text();
  const json = parseJsonOrUndefined(text);
  const origin = response.headers.has("x-request-id") ? "app" : "runtime";
  return { status: response.status, text, json, ms: performance.now() - started, sent, origin };
}

async function firstChunk(response: Response): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const { value } = await reader.read();
  await reader.cancel();
  return new TextDecoder().decode(value);
}

function decodeSafe(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** HTTP/1.1 over a socket, with `Connection: close`; status 0 when the server closed without answering. */
async function sendRaw(ctx: FuzzContext, request: FuzzRequest, started: number): Promise<Outcome> {
  const raw = request.raw as NonNullable<FuzzRequest["raw"]>;
  const lines = [`${request.method} ${raw.target} HTTP/1.1`];
  if (!raw.lines.some((line) => line.toLowerCase().startsWith("host:")))
    lines.push(`Host: 127.0.0.1:${ctx.port}`);
  for (const [name, value] of Object.entries(credentialHeaders(ctx, request.auth)))
    lines.push(`${name}: ${value}`);
  lines.push(...raw.lines, "Connection: close");
  const chunked = raw.lines.some((line) => /transfer-encoding: chunked/i.test(line));
  const length = /content-length: (\d+)/i.exec(raw.lines.join("\n"))?.[1];
  const payload = chunked ? "2\r\n{}\r\n0\r\n\r\n" : length ? "{}ab".slice(0, Number(length)) : "";
  const wire = `${lines.join("\r\n")}\r\n\r\n${payload}`;
  const sent = `${request.method} ${raw.target.slice(0, 200)}`;
  const text = await new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    };
    const timer = setTimeout(finish, 5_000);
    Bun.connect({
      hostname: "127.0.0.1",
      port: ctx.port,
      socket: {
        open(socket) {
          socket.write(wire);
        },
        data(socket, data) {
          chunks.push(Buffer.from(data));
          if (responseComplete(Buffer.concat(chunks).toString("latin1"))) {
            socket.end();
            finish();
          }
        },
        close: finish,
        error: finish,
        connectError: finish,
      },
    }).catch(finish);
  });
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  const head = text.slice(0, Math.max(0, text.indexOf("\r\n\r\n")));
  const origin = /\r\nx-request-id:/i.test(head) ? "app" : "runtime";
  return { status, text: text.slice(0, 2_000), ms: performance.now() - started, sent, origin };
}

function responseComplete(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const head = text.slice(0, end);
  const length = /content-length: (\d+)/i.exec(head)?.[1];
  if (length !== undefined) return text.length - end - 4 >= Number(length);
  if (/transfer-encoding: chunked/i.test(head)) return text.endsWith("0\r\n\r\n");
  return false;
}

/** One line for a failure report: what was sent, as whom, with which headers and body (cut). */
export function describeRequest(request: FuzzRequest, outcome?: Outcome): string {
  const body = request.body
    ? "json" in request.body
      ? JSON.stringify(resolveRefs(request.body.json, (r) => r.toString()))
      : "text" in request.body
        ? JSON.stringify(request.body.text)
        : "bytes" in request.body
          ? `<${request.body.bytes.length} bytes>`
          : JSON.stringify(resolveRefs(request.body.form, (r) => r.toString()))
    : "";
  return [
    `${outcome?.sent ?? `${request.method} ${request.endpoint}`}`,
    `auth=${request.auth.slice(0, 80)}`,
    request.signature ? `signature=${request.signature}` : "",
    request.headers.length ? `headers=${JSON.stringify(request.headers).slice(0, 300)}` : "",
    request.body?.type !== undefined ? `content-type=${String(request.body.type)}` : "",
    body ? `body=${body.slice(0, 400)}` : "",
    request.raw ? `raw=${JSON.stringify(request.raw).slice(0, 300)}` : "",
  ]
    .filter(Boolean)
    .join(" ");
}
