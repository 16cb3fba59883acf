// Signatures interoperate with the official `standardwebhooks` package both ways; verification edge cases.
import { describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { decodeSecret, generateSecret, isSecret } from "./secret.ts";
import { sign, signedHeaders, verify } from "./sign.ts";

const body = JSON.stringify({ specversion: "1.0", id: "evt_1", type: "order.confirmed", data: { n: 1 } });

describe("secrets", () => {
  test("a generated secret is whsec_ + base64 of 32 random bytes, and the official package takes it", () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(decodeSecret(secret)).toHaveLength(32);
    expect(generateSecret()).not.toBe(secret);
    expect(() => new Webhook(secret)).not.toThrow();
  });

  test("anything else is not a secret", () => {
    for (const text of [
      "",
      "whsec_",
      "secret",
      "whsec_!!!",
      "whsec_abc",
      "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ]) {
      expect(isSecret(text)).toBe(false);
    }
    expect(isSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).toBe(true);
  });
});

describe("Standard Webhooks signatures", () => {
  test("our headers verify with the official package's Webhook.verify", async () => {
    const secret = generateSecret();
    const headers = await signedHeaders({ secret, id: "msg_abc", body, now: Date.now() });
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    // ... and fail there with another secret or another body.
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
    expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow();
  });

  test("the official package's signatures verify with ours", async () => {
    const secret = generateSecret();
    const now = Date.now();
    const signature = new Webhook(secret).sign("msg_xyz", new Date(now), body);
    const headers = {
      "webhook-id": "msg_xyz",
      "webhook-timestamp": String(Math.floor(now / 1000)),
      "webhook-signature": signature,
    };
    expect(await verify({ secrets: secret, headers, body, now })).toEqual({
      ok: true,
      id: "msg_xyz",
      timestamp: Math.floor(now / 1000),
    });
    expect(signature).toBe(await sign({ secret, id: "msg_xyz", timestamp: Math.floor(now / 1000), body }));
  });

  test("the spec's published test vector", async () => {
    // From the Standard Webhooks reference libraries' tests.
    const signature = await sign({
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
      timestamp: 1614265330,
      body: '{"test": 2432232314}',
    });
    expect(signature).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  test("several signatures, other versions and rotated secrets", async () => {
    const secret = generateSecret();
    const old = generateSecret();
    const now = Date.now();
    const good = await signedHeaders({ secret, id: "m1", body, now });
    const theirs = await signedHeaders({ secret: generateSecret(), id: "m1", body, now });
    const headers = new Headers({
      ...good,
      "webhook-signature": `v1a,abc ${theirs["webhook-signature"]} ${good["webhook-signature"]}`,
    });
    expect((await verify({ secrets: secret, headers, body, now })).ok).toBe(true);
    expect((await verify({ secrets: [old, secret], headers, body, now })).ok).toBe(true);
    expect(await verify({ secrets: [old], headers, body, now })).toMatchObject({
      ok: false,
      reason: "bad_signature",
    });
    // A v1 signature offered under another version label does not count.
    const relabelled = { ...good, "webhook-signature": good["webhook-signature"].replace("v1,", "v2,") };
    expect(await verify({ secrets: secret, headers: relabelled, body, now })).toMatchObject({
      reason: "bad_signature",
    });
  });

  test("the timestamp is checked both ways with 5 minutes of tolerance, before the signature", async () => {
    const secret = generateSecret();
    const now = Date.UTC(2026, 5, 1);
    const at = async (offsetSeconds: number) => {
      const headers = await signedHeaders({ secret, id: "m", body, now: now + offsetSeconds * 1000 });
      return verify({ secrets: secret, headers, body, now });
    };
    expect((await at(-300)).ok).toBe(true);
    expect((await at(300)).ok).toBe(true);
    expect(await at(-301)).toMatchObject({ ok: false, reason: "stale" });
    expect(await at(301)).toMatchObject({ ok: false, reason: "future" });
  });

  test("missing or malformed headers", async () => {
    const secret = generateSecret();
    const now = Date.now();
    const good = await signedHeaders({ secret, id: "m", body, now });
    const without = (name: string) =>
      Object.fromEntries(Object.entries(good).filter(([key]) => key !== name));
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
      expect(await verify({ secrets: secret, headers: without(name), body, now })).toMatchObject({
        reason: "missing_headers",
      });
    }
    for (const stamp of ["abc", "1.5", "-1", "1e9", ""]) {
      const result = await verify({
        secrets: secret,
        headers: { ...good, "webhook-timestamp": stamp },
        body,
        now,
      });
      expect(result.ok).toBe(false);
    }
    // A webhook-id is 1-256 visible ASCII characters, even when validly signed: a longer one could not be
    // remembered for replay protection.
    for (const id of ["x".repeat(257), "msg 1", "msg\u00e9"]) {
      const signed = await signedHeaders({ secret, id, body, now });
      expect(await verify({ secrets: secret, headers: signed, body, now })).toEqual({
        ok: false,
        reason: "invalid_id",
      });
    }
    const longest = await signedHeaders({ secret, id: "x".repeat(256), body, now });
    expect((await verify({ secrets: secret, headers: longest, body, now })).ok).toBe(true);
    // Header names are case-insensitive in a plain record too.
    const upper = Object.fromEntries(Object.entries(good).map(([key, value]) => [key.toUpperCase(), value]));
    expect((await verify({ secrets: secret, headers: upper, body, now })).ok).toBe(true);
  });
});
