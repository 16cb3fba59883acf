// The signed delivery endpoint: valid, duplicate, forged, expired and poison deliveries.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { base64url, SignJWT } from "jose";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { counter } from "../../test/conformance/fixtures.ts";
import { deliveryRoutes } from "./deliver.ts";

const current = "sig_current_for_tests";
const next = "sig_next_for_tests";
const publicUrl = "http://edge.test";
const host = new LocalActorHost({
  actors: [counter],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-deliver-")), "actors.db")),
});
const app = deliveryRoutes({ actors: host, currentSigningKey: current, nextSigningKey: next, publicUrl });
afterAll(() => host.stop());

const url = (key: string) => `${publicUrl}/_edgewise/deliver/counter/${key}`;
const increment = (key: string, by = 1) =>
  createEnvelope({ type: "Increment", source: "edgewise://test", target: `counter/${key}`, data: { by } });

async function deliver(key: string, body: string, signature?: string) {
  return app.request(url(key), {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...(signature ? { "upstash-signature": signature } : {}) },
  });
}

const sign = (key: string, target: string, body: string) =>
  createSigner(key)(target, new TextEncoder().encode(body));

async function jwt(
  claims: Record<string, unknown>,
  key = current,
  times: { iat?: number; exp?: number; nbf?: number } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("Upstash")
    .setIssuedAt(times.iat ?? now)
    .setNotBefore(times.nbf ?? now)
    .setExpirationTime(times.exp ?? now + 300)
    .sign(new TextEncoder().encode(key));
}

async function hash(body: string) {
  return base64url.encode(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body))),
  );
}

const inboxOf = (key: string) => host.inspect({ type: "counter", key }).inboxSize;

describe("signed delivery endpoint", () => {
  test("a signed delivery reaches the actor; repeats are acknowledged and applied once", async () => {
    const body = JSON.stringify(increment("d1", 5));
    const signature = await sign(current, url("d1"), body);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await (await deliver("d1", body, signature)).json());
    expect(answers).toEqual([{ duplicate: false }, { duplicate: true }, { duplicate: true }]);
    expect(host.inspect({ type: "counter", key: "d1" }).state).toMatchObject({ count: 5 });
  });

  test("the next signing key is accepted too, so keys rotate without downtime", async () => {
    const body = JSON.stringify(increment("d2"));
    expect((await deliver("d2", body, await sign(next, url("d2"), body))).status).toBe(200);
  });

  test("unsigned, forged, tampered, expired, not-yet-valid and wrong-URL deliveries get 401 and never reach an actor", async () => {
    const body = JSON.stringify(increment("d3", 100));
    const cases: Array<[string, string | undefined, string]> = [
      ["unsigned", undefined, body],
      ["forged with another key", await sign("sig_attacker", url("d3"), body), body],
      ["tampered body", await sign(current, url("d3"), body), body.replace('"by":100', '"by":999')],
      ["signed for another URL", await sign(current, url("someone-else"), body), body],
      [
        "expired",
        await jwt({ sub: url("d3"), body: await hash(body) }, current, { iat: 1, nbf: 1, exp: 100 }),
        body,
      ],
      [
        "not valid yet",
        await jwt({ sub: url("d3"), body: await hash(body) }, current, {
          nbf: Math.floor(Date.now() / 1000) + 3600,
        }),
        body,
      ],
      ["garbage signature", "not.a.jwt", body],
      [
        "alg none",
        `${base64url.encode('{"alg":"none","typ":"JWT"}')}.${base64url.encode(JSON.stringify({ iss: "Upstash", sub: url("d3"), body: await hash(body), exp: 9e9 }))}.`,
        body,
      ],
    ];
    for (const [name, signature, sent] of cases) {
      const response = await deliver("d3", sent, signature);
      expect({ name, status: response.status }).toEqual({ name, status: 401 });
      expect(response.headers.get("content-type")).toBe("application/problem+json");
    }
    expect(host.inspect({ type: "counter", key: "d3" }).state).toBeUndefined();
  });

  test("poison messages get 489 with Upstash-NonRetryable-Error, and commit nothing", async () => {
    const good = increment("d4");
    const bodies: Array<[string, string]> = [
      ["not JSON", "{oops"],
      ["not an envelope", JSON.stringify({ hello: "world" })],
      ["unknown message type", JSON.stringify({ ...good, type: "Explode" })],
      ["fails its schema", JSON.stringify({ ...good, data: { by: "lots" } })],
      ["target differs from the URL", JSON.stringify({ ...good, target: "counter/elsewhere" })],
    ];
    for (const [name, body] of bodies) {
      const response = await deliver("d4", body, await sign(current, url("d4"), body));
      expect({ name, status: response.status }).toEqual({ name, status: 489 });
      expect(response.headers.get("upstash-nonretryable-error")).toBe("true");
    }
    expect(inboxOf("d4")).toBe(0);
  });

  test("a handler failure answers 5xx so the broker retries; nothing commits", async () => {
    const body = JSON.stringify({ ...increment("d5"), type: "FailAfterEffects", data: {} });
    const response = await deliver("d5", body, await sign(current, url("d5"), body));
    expect(response.status).toBe(500);
    expect(response.headers.get("upstash-nonretryable-error")).toBeNull();
    expect(inboxOf("d5")).toBe(0);
  });
});
