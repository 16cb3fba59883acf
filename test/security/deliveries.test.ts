// Security suite, deliveries: forged and replayed broker deliveries (Upstash-Signature) and actor-host requests (HMAC).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { base64url, SignJWT } from "jose";
import { actorHostPaths, signatureHeaders, signedMessage } from "../../actors/hosts/remote/protocol.ts";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY } from "../../deploy/local/broker/config.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { hmacSigner } from "../../shared/crypto/hmac.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { uniqueName } from "../commerce/client.ts";
import { attackCategory } from "./report.ts";
import { availableOf, expectClosed, send } from "./support.ts";

const cases = attackCategory("deliveries");
const actorHostSecret = "actor-host-secret-for-the-security-suite-0123456789";

let running: CommerceNode;
let keys: { current: string; next: string };
const customer = uniqueName("cust-d");

beforeAll(async () => {
  running = await startCommerceNode("security_deliveries", { ACTOR_HOST_SECRET: actorHostSecret });
  const broker = running.node.broker;
  if (!broker) throw new Error("the node has no embedded broker");
  keys = { current: broker.currentSigningKey, next: broker.nextSigningKey };
  await running.client.putAccount(customer, 7_000);
}, 30_000);
afterAll(() => running?.stop());

/** A sku with `available` units, read straight from the actor's committed state (no read cache in the way). */
async function freshSku(available = 10) {
  const sku = uniqueName("dsku");
  await running.client.putSku(sku, available, 100);
  return sku;
}
const stock = (sku: string) => availableOf(running, sku);
const points = (key: string) => running.node.host?.inspect({ type: "loyalty", key }).state;

const restock = (sku: string, quantity: number) =>
  createEnvelope({
    type: "Restock",
    source: "edgewise://security-suite",
    target: `inventory/${sku}`,
    data: { sku, quantity },
  });

describe("broker deliveries (Upstash-Signature)", () => {
  const path = (target: string) => `/_edgewise/deliver/${target}`;
  const url = (target: string) => `${running.node.publicUrl}${path(target)}`;
  const sign = (target: string, body: string, key = keys.current, base = running.node.publicUrl) =>
    createSigner(key)(`${base}${path(target)}`, new TextEncoder().encode(body));
  const deliver = (target: string, body: string, signature?: string) =>
    send(running.node.url, "POST", path(target), {
      body,
      ...(signature !== undefined ? { headers: { "upstash-signature": signature } } : {}),
    });
  const hash = async (body: string) =>
    base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body))));
  /** A QStash-style JWT with any claims and times, signed with the node's current key unless told. */
  const jwt = async (
    claims: Record<string, unknown>,
    options: { key?: string; iss?: string; nbf?: number; exp?: number } = {},
  ) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer(options.iss ?? "Upstash")
      .setIssuedAt(Math.min(now, options.nbf ?? now))
      .setNotBefore(options.nbf ?? now)
      .setExpirationTime(options.exp ?? now + 300)
      .sign(new TextEncoder().encode(options.key ?? keys.current));
  };

  test("a genuine delivery is applied once; replays of it, however signed, are acknowledged as duplicates", async () => {
    const sku = await freshSku();
    const target = `inventory/${sku}`;
    const body = JSON.stringify(restock(sku, 5));
    const signature = await sign(target, body);
    expect((await deliver(target, body, signature)).json).toEqual({ duplicate: false });
    expect(stock(sku)).toBe(15);
    const replays: Array<[string, () => Promise<string>]> = [
      ["the same signed request again", async () => signature],
      ["re-signed by the broker (a redelivery)", () => sign(target, body)],
      ["re-signed with the next key", () => sign(target, body, keys.next)],
    ];
    for (const [name, signed] of replays) {
      const answer = await deliver(target, body, await signed());
      expectClosed(
        cases,
        `replay: ${name}`,
        { status: answer.status, json: answer.json, stock: stock(sku) },
        { status: 200, json: { duplicate: true }, stock: 15 },
      );
    }
  });

  test("five concurrent copies of one genuine delivery apply it once", async () => {
    const sku = await freshSku();
    const target = `inventory/${sku}`;
    const body = JSON.stringify(restock(sku, 3));
    const signature = await sign(target, body);
    const answers = await Promise.all(Array.from({ length: 5 }, () => deliver(target, body, signature)));
    const fresh = answers.filter((answer) => (answer.json as { duplicate?: boolean }).duplicate === false);
    expectClosed(
      cases,
      "five concurrent replays",
      { statuses: answers.map((answer) => answer.status), applied: fresh.length, stock: stock(sku) },
      { statuses: [200, 200, 200, 200, 200], applied: 1, stock: 13 },
    );
  });

  test("unsigned, forged, altered, re-targeted, expired and not-yet-valid deliveries get 401 and reach no actor", async () => {
    const sku = await freshSku();
    const other = await freshSku();
    const target = `inventory/${sku}`;
    const body = JSON.stringify(restock(sku, 100));
    const now = Math.floor(Date.now() / 1000);
    const attempts: Array<[string, string, string, string | undefined]> = [
      ["no signature", target, body, undefined],
      ["empty signature", target, body, ""],
      ["signed with another key", target, body, await sign(target, body, "sig_attacker_key")],
      // The embedded broker's keys are the node's own (deploy/secrets.ts), never `qstash dev`'s public ones.
      [
        "signed with qstash dev's public key",
        target,
        body,
        await sign(target, body, DEV_CURRENT_SIGNING_KEY),
      ],
      [
        "signed with qstash dev's public next key",
        target,
        body,
        await sign(target, body, DEV_NEXT_SIGNING_KEY),
      ],
      [
        "body altered after signing",
        target,
        body.replace('"quantity":100', '"quantity":900'),
        await sign(target, body),
      ],
      [
        "signature for this sku replayed to another sku's URL",
        `inventory/${other}`,
        JSON.stringify(restock(other, 100)),
        await sign(target, JSON.stringify(restock(other, 100))),
      ],
      [
        "signed for another host",
        target,
        body,
        await sign(target, body, keys.current, "http://evil.example"),
      ],
      ["signed for the same path in another case", target, body, await sign(`Inventory/${sku}`, body)],
      [
        "expired",
        target,
        body,
        await jwt({ sub: url(target), body: await hash(body) }, { nbf: now - 900, exp: now - 600 }),
      ],
      [
        "not valid yet",
        target,
        body,
        await jwt({ sub: url(target), body: await hash(body) }, { nbf: now + 3600 }),
      ],
      ["body claim of another body", target, body, await jwt({ sub: url(target), body: await hash("{}") })],
      ["no body claim", target, body, await jwt({ sub: url(target) })],
      ["no sub claim", target, body, await jwt({ body: await hash(body) })],
      [
        "issuer not Upstash",
        target,
        body,
        await jwt({ sub: url(target), body: await hash(body) }, { iss: "Attacker" }),
      ],
      [
        "alg none",
        target,
        body,
        `${base64url.encode('{"alg":"none","typ":"JWT"}')}.${base64url.encode(JSON.stringify({ iss: "Upstash", sub: url(target), body: await hash(body), exp: now + 300, nbf: now - 1 }))}.`,
      ],
      ["not a JWT", target, body, "not.a.jwt"],
    ];
    for (const [name, to, sent, signature] of attempts) {
      const answer = await deliver(to, sent, signature);
      expectClosed(
        cases,
        `delivery ${name}`,
        { status: answer.status, problem: answer.problem, stocks: [stock(sku), stock(other)] },
        { status: 401, problem: true, stocks: [10, 10] },
      );
    }
  });

  test("forged deliveries to the billing consumer and to loyalty move no money and no points", async () => {
    const billing = `billing/${customer}`;
    const payment = JSON.stringify(
      createEnvelope({
        type: "PaymentRequested",
        source: "edgewise://order",
        target: billing,
        data: { orderId: uniqueName("forged"), customerId: customer, amountCents: 7_000 },
      }),
    );
    const loyalty = `loyalty/${customer}`;
    const confirmed = JSON.stringify(
      createEnvelope({
        type: "OrderConfirmed",
        source: "edgewise://order",
        target: loyalty,
        data: {
          orderId: uniqueName("forged"),
          version: 3,
          customerId: customer,
          items: [],
          totalCents: 1_000_000,
        },
      }),
    );
    const attempts: Array<[string, string, string, string | undefined]> = [
      ["PaymentRequested, unsigned", billing, payment, undefined],
      [
        "PaymentRequested, signed with another key",
        billing,
        payment,
        await sign(billing, payment, "sig_attacker"),
      ],
      ["OrderConfirmed to loyalty, unsigned", loyalty, confirmed, undefined],
      ["OrderConfirmed to loyalty, signed for billing", loyalty, confirmed, await sign(billing, confirmed)],
    ];
    for (const [name, target, body, signature] of attempts) {
      const answer = await deliver(target, body, signature);
      expectClosed(
        cases,
        `delivery ${name}`,
        {
          status: answer.status,
          balance: await running.client.balance(customer),
          points: points(customer),
        },
        { status: 401, balance: 7_000, points: undefined },
      );
    }
  });

  test("a genuinely signed envelope whose target is not the URL's actor is dead-lettered (489), not applied", async () => {
    const sku = await freshSku();
    const other = await freshSku();
    const body = JSON.stringify(restock(other, 50));
    const answer = await deliver(`inventory/${sku}`, body, await sign(`inventory/${sku}`, body));
    expectClosed(
      cases,
      "signed delivery whose envelope targets another actor",
      {
        status: answer.status,
        nonRetryable: answer.headers.get("upstash-nonretryable-error"),
        stocks: [stock(sku), stock(other)],
      },
      { status: 489, nonRetryable: "true", stocks: [10, 10] },
    );
  });
});

describe("split-deployment actor host (HMAC over path, timestamp and body)", () => {
  const post = (path: string, body: string, headers: Record<string, string>) =>
    send(running.node.url, "POST", path, { body, headers });
  /** Headers of a request signed for `signedPath` at `timestamp` (ms) with `secret`, over `signedBody`. */
  const signed = async (
    signedPath: string,
    body: string,
    options: { secret?: string; timestamp?: string; sentTimestamp?: string } = {},
  ) => {
    const timestamp = options.timestamp ?? String(Date.now());
    const signature = await hmacSigner(options.secret ?? actorHostSecret).sign(
      signedMessage(signedPath, timestamp, body),
    );
    return {
      [signatureHeaders.timestamp]: options.sentTimestamp ?? timestamp,
      [signatureHeaders.signature]: signature,
    };
  };

  test("a genuine ask is applied once; a replay, as sent or re-signed, is a duplicate", async () => {
    const sku = await freshSku();
    const body = JSON.stringify(restock(sku, 4));
    const headers = await signed(actorHostPaths.ask, body);
    expect((await post(actorHostPaths.ask, body, headers)).json).toMatchObject({
      ok: true,
      duplicate: false,
    });
    expect(stock(sku)).toBe(14);
    const replays: Array<[string, string, Record<string, string>]> = [
      ["the same signed ask again", actorHostPaths.ask, headers],
      [
        "the ask re-signed with a fresh timestamp",
        actorHostPaths.ask,
        await signed(actorHostPaths.ask, body),
      ],
      [
        "the same envelope as a signed receive",
        actorHostPaths.receive,
        await signed(actorHostPaths.receive, body),
      ],
    ];
    for (const [name, path, sent] of replays) {
      const answer = await post(path, body, sent);
      expectClosed(
        cases,
        `actor host replay: ${name}`,
        {
          status: answer.status,
          duplicate: (answer.json as { duplicate?: boolean }).duplicate,
          stock: stock(sku),
        },
        { status: 200, duplicate: true, stock: 14 },
      );
    }
  });

  test("unsigned, wrong secret, stale, future, altered and path-swapped requests get 401 and reach no actor", async () => {
    const sku = await freshSku();
    const body = JSON.stringify(restock(sku, 100));
    const now = Date.now();
    const attempts: Array<[string, string, string, Record<string, string>]> = [
      ["unsigned", actorHostPaths.ask, body, {}],
      ["timestamp only", actorHostPaths.ask, body, { [signatureHeaders.timestamp]: String(now) }],
      [
        "wrong secret",
        actorHostPaths.ask,
        body,
        await signed(actorHostPaths.ask, body, { secret: "x".repeat(48) }),
      ],
      [
        "stale timestamp (61 s)",
        actorHostPaths.ask,
        body,
        await signed(actorHostPaths.ask, body, { timestamp: String(now - 61_000) }),
      ],
      [
        "future timestamp (61 s)",
        actorHostPaths.ask,
        body,
        await signed(actorHostPaths.ask, body, { timestamp: String(now + 61_000) }),
      ],
      [
        "timestamp in seconds, not ms",
        actorHostPaths.ask,
        body,
        await signed(actorHostPaths.ask, body, { timestamp: String(Math.floor(now / 1000)) }),
      ],
      [
        "timestamp header changed after signing",
        actorHostPaths.ask,
        body,
        await signed(actorHostPaths.ask, body, {
          timestamp: String(now - 30_000),
          sentTimestamp: String(now),
        }),
      ],
      [
        "timestamp written 1.7e12",
        actorHostPaths.ask,
        body,
        await signed(actorHostPaths.ask, body, { timestamp: `${(now / 1e12).toFixed(12)}e12` }),
      ],
      [
        "body altered after signing",
        actorHostPaths.ask,
        body.replace('"quantity":100', '"quantity":900'),
        await signed(actorHostPaths.ask, body),
      ],
      ["ask signature used on receive", actorHostPaths.receive, body, await signed(actorHostPaths.ask, body)],
      ["receive signature used on ask", actorHostPaths.ask, body, await signed(actorHostPaths.receive, body)],
    ];
    for (const [name, path, sent, headers] of attempts) {
      const answer = await post(path, sent, headers);
      expectClosed(
        cases,
        `actor host ${name}`,
        { status: answer.status, problem: answer.problem, stock: stock(sku) },
        { status: 401, problem: true, stock: 10 },
      );
    }
  });

  test("other internal paths are 404, signed or not", async () => {
    const sku = await freshSku();
    const body = JSON.stringify(restock(sku, 1));
    for (const path of ["/_edgewise/actors/inspect", "/_edgewise/actors/ask/", "/_edgewise/admin"]) {
      const answer = await post(path, body, await signed(path, body));
      expectClosed(
        cases,
        `signed request to ${path}`,
        { status: answer.status, problem: answer.problem, stock: stock(sku) },
        { status: 404, problem: true, stock: 10 },
      );
    }
  });
});
