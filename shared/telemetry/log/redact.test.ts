// Redaction: sensitive keys at any depth, token shapes anywhere in a string, and what is left readable.
import { describe, expect, test } from "bun:test";
import { errorFields, maskSecrets, redact, redacted } from "./redact.ts";

/**
 * The fastest of three runs, in ms: a quadratic scan takes about 0.6 s every time, while a single run on a loaded CI
 * machine may be stalled by a GC or the scheduler for longer than the bound.
 */
function bestOf3(run: () => void): number {
  let fastest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    run();
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

const jwt =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoiYWRtaW4ifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
const upstashRest = "AX8sASQgN2Q5ZjE1YTQtYjBiZS00ZDg2LWE3ZmQtNjQ4ZjI3YzNhYjE0ZmE1OWQ4Y2E3";
const qstashToken = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=";
const apiKey = "ew_0123456789abcdef_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdefg";

describe("maskSecrets", () => {
  test.each([
    ["a JWT", `token was ${jwt} here`, jwt],
    ["a Bearer credential", "header Bearer abc.def-ghi_123 sent", "abc.def-ghi_123"],
    ["a lowercase bearer", "authorization: bearer s3cr3t-value", "s3cr3t-value"],
    [
      "a Standard Webhooks secret",
      "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
    [
      "a webhook signature",
      "got v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
      "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN",
    ],
    ["a QStash token", `QSTASH_TOKEN=${qstashToken}`, qstashToken.slice(0, 30)],
    ["a QStash signing key", "key sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r", "7kYjw48mhY7kAjqNGcy6cr29RJ6r"],
    ["an Upstash REST token", `token ${upstashRest}.`, upstashRest],
    ["an API key's secret", `key ${apiKey}`, "AbCdEfGhIjKlMnOpQrSt"],
    [
      "a password in a URL",
      'input: "postgres://edge:SuperSecretPw123@127.0.0.1:99999/db"',
      "SuperSecretPw123",
    ],
    ["a password in a rediss URL", "rediss://default:p4ss@cache.internal:6380", "p4ss"],
    // A password that breaks the URL (an unescaped "/", "#" or "@"), as a parser's error quotes it.
    [
      "a password with a slash in a URL",
      "Invalid URL: 'postgres://edge:c2Vj/cmV0PLANTED@db:5432/app'",
      "PLANTED",
    ],
    ["a password with a # and an @ in a URL", "redis://u:se#cr@tPLANTED@cache:6379", "PLANTED"],
    ["a password with a ? in a URL", "postgres://u:PLANTED?x@h:5432/db", "PLANTED"],
    ["a password with an @ in a URL", "postgres://u:p@PLANTED@h:5432/db?application_name=a@b", "PLANTED"],
    ["a password alone in a redis URL", "redis://:PLANTED@cache", "PLANTED"],
    ["a percent-encoded password", "postgres://u:PLANTED%2F%3F%23%40x@h:5432/db", "PLANTED"],
    ["a password before an IPv6 host", "redis://u:PLANTED@[::1]:6379/0", "PLANTED"],
  ])("masks %s", (_name, text, secret) => {
    const masked = maskSecrets(text);
    expect(masked).not.toContain(secret);
    expect(masked).toContain(redacted);
  });

  test("keeps what identifies without granting: an API key's id, ids, hashes, paths, trace ids", () => {
    expect(maskSecrets(`key ${apiKey}`)).toBe(`key ew_0123456789abcdef_${redacted}`);
    expect(maskSecrets("postgres://edge:pw@db.internal:5432/app")).toBe(
      `postgres://edge:${redacted}@db.internal:5432/app`,
    );
    expect(maskSecrets("see https://example.com/a:b@c and http://host:8080/x")).toBe(
      "see https://example.com/a:b@c and http://host:8080/x",
    );
    for (const text of [
      "0mabc1def2AbCdEfGhIjKl",
      "4bf92f3577b34da6a3ce929d0e0e4736",
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "POST /v1/orders/:orderId/cancel",
      "/_edgewise/deliver/readside/events",
      "invalid token: expired",
      "www.example.com",
      "Bearer",
    ]) {
      expect(maskSecrets(text)).toBe(text);
    }
  });

  test("an @ after a URL's authority is no password: its port, path and query stay readable", () => {
    for (const text of [
      "https://h:8443/x?email=a@b.com",
      "GET https://api.example.com:8443/users/a@b.com/orders failed",
      "http://h:80#a@b and http://h:80?x=1@",
      "https://[::1]:8443/x?email=a@b.com",
      'fetch "https://idp.example.com:443/keys?login=ops@example.com" refused',
    ]) {
      expect(maskSecrets(text)).toBe(text);
    }
    // Userinfo before the host is masked; an @ in the path or query after it is left as it was.
    expect(maskSecrets("postgres://u:p@h:5432/db?application_name=a@b")).toBe(
      `postgres://u:${redacted}@h:5432/db?application_name=a@b`,
    );
    expect(maskSecrets("rediss://default:p4ss@cache.internal:6380/0?x=y@z")).toBe(
      `rediss://default:${redacted}@cache.internal:6380/0?x=y@z`,
    );
  });

  test("a long run with no token in it is scanned quickly", () => {
    const fastest = bestOf3(() => {
      maskSecrets("a".repeat(8_000));
      maskSecrets("a-".repeat(4_000));
      maskSecrets(`x://${"a:".repeat(4_000)}`);
      maskSecrets("a://b:".repeat(1_500));
    });
    expect(fastest).toBeLessThan(100);
  });

  test("many URL starts in one long run are scanned in linear time (an error's stack or message is not cut)", () => {
    // Each `scheme://user:` once looked for an `@` up to the run's end: 64 KB of them took about 0.6 s.
    const fastest = bestOf3(() => {
      maskSecrets("a://b:".repeat(11_000));
      maskSecrets("a://:x".repeat(11_000));
    });
    expect(fastest).toBeLessThan(100);
    expect(maskSecrets("url=postgres://u:p/w@h/db?next=http://y:1/z")).toBe(
      "url=postgres://u:[redacted]@h/db?next=http://y:1/z",
    );
  });
});

describe("redact", () => {
  test("sensitive keys are redacted at any depth and in any case", () => {
    const out = redact({
      Authorization: "Bearer x",
      nested: { "X-API-Key": "k", cookie: "c", deeper: [{ password: "p", clientSecret: "s" }] },
      "upstash-signature": "sig",
      "webhook-signature": "v1,abc",
      JWT_SECRET: "s",
      accessToken: "t",
      keep: "visible",
    });
    expect(out).toEqual({
      Authorization: redacted,
      nested: {
        "X-API-Key": redacted,
        cookie: redacted,
        deeper: [{ password: redacted, clientSecret: redacted }],
      },
      "upstash-signature": redacted,
      "webhook-signature": redacted,
      JWT_SECRET: redacted,
      accessToken: redacted,
      keep: "visible",
    });
  });

  test("an API key's id stays readable by name; the key, and every other secret name, stays masked", () => {
    const id = "0123456789abcdef";
    // As the admin audit's warn line carries them: the actor's key and the target revoked.
    const ids = {
      actor: { sub: "ops", via: "api-key", apiKeyId: id },
      target: { subject: `api-keys/${id}`, apiKeyId: id },
      api_key_id: id,
      "x-api-key-id": id,
      API_KEY_ID: id,
      apiKeyIds: [id],
      privateKeyId: id,
      keyId: id,
    };
    expect(redact(ids)).toEqual(ids);
    // Masked still: the key itself under any writing of its name, and a secret's name that ends in a key id.
    const secrets = {
      apiKey: apiKey,
      api_key: apiKey,
      "x-api-key": apiKey,
      API_KEY: apiKey,
      privateKey: "pk",
      apiKeyIdToken: "t",
      secretApiKeyId: "s",
      apiKeyIdentity: "s",
      tokenApiKeyId: "t",
    };
    expect(redact(secrets)).toEqual(Object.fromEntries(Object.keys(secrets).map((key) => [key, redacted])));
    // A whole key under an id's name still loses its secret, by its shape.
    expect(redact({ apiKeyId: apiKey })).toEqual({ apiKeyId: `ew_0123456789abcdef_${redacted}` });
  });

  test("Headers and Maps are read by entry, so their credentials are redacted by name", () => {
    const headers = new Headers({ authorization: `Bearer ${jwt}`, "x-request-id": "r1" });
    expect(redact({ headers })).toEqual({ headers: { authorization: redacted, "x-request-id": "r1" } });
    expect(redact(new Map([["token", "t"]]))).toEqual({ token: redacted });
  });

  test("a key named __proto__ or constructor (a parsed body's, a header's) is kept as a field, and redacted inside", () => {
    const body = JSON.parse('{"__proto__":{"token":"t","x":1},"constructor":{"prototype":{"y":2}}}');
    const out = redact({ body, headers: new Headers([["__proto__", "h"]]) });
    expect(JSON.stringify(out)).toBe(
      '{"body":{"__proto__":{"token":"[redacted]","x":1},"constructor":{"prototype":{"y":2}}},"headers":{"__proto__":"h"}}',
    );
    expect(Object.getPrototypeOf((out as { body: object }).body)).toBe(Object.prototype);
  });

  test("cycles, depth, long arrays, bigints and functions become JSON-safe", () => {
    const cycle: Record<string, unknown> = { name: "a" };
    cycle.self = cycle;
    const out = redact({ cycle, big: 10n, fn: () => 1, list: Array.from({ length: 105 }, (_, i) => i) }) as {
      cycle: Record<string, unknown>;
      big: string;
      list: unknown[];
    };
    expect(out.cycle.self).toBe("[circular]");
    expect(out.big).toBe("10");
    expect("fn" in out).toBe(false);
    expect(out.list).toHaveLength(101);
    expect(() => JSON.stringify(out)).not.toThrow();
  });

  test("errors keep name, message, code and the cause chain, never their other properties", () => {
    const root = Object.assign(new Error(`connect failed with ${jwt}`), {
      code: "ECONNREFUSED",
      parameters: ["hunter2"],
    });
    const error = new Error("query failed", { cause: root });
    const out = redact({ error }) as { error: Record<string, unknown> };
    const text = JSON.stringify(out);
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain(jwt);
    expect(out.error.message).toBe("query failed");
    expect(out.error.cause).toMatchObject({ name: "Error", code: "ECONNREFUSED" });
    expect(errorFields("plain")).toEqual({ message: "plain" });
  });
});
