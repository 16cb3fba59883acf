// Unit tests for the API key format, hashing and the uncached verifier.
import { describe, expect, test } from "bun:test";
import { MemoryApiKeyStore } from "./api-key-store.ts";
import {
  generateApiKey,
  hashSecret,
  isApiKeyId,
  issueApiKey,
  parseApiKey,
  storeApiKeyVerifier,
} from "./api-keys.ts";

describe("API keys", () => {
  test("the format is ew_<16-char id>_<43-char base64url secret>, and parses back", async () => {
    const { id, key, secretHash } = await generateApiKey();
    expect(key).toMatch(/^ew_[0-9a-z]{16}_[A-Za-z0-9_-]{43}$/);
    expect(isApiKeyId(id)).toBe(true);
    const parsed = parseApiKey(key);
    expect(parsed?.id).toBe(id);
    expect(secretHash).toBe(await hashSecret(parsed?.secret ?? ""));
    expect(secretHash).toMatch(/^[0-9a-f]{64}$/);
  });

  test("keys are unique, and an underscore in the secret does not confuse the parser", async () => {
    const keys = await Promise.all(Array.from({ length: 200 }, () => generateApiKey()));
    expect(new Set(keys.map((k) => k.id)).size).toBe(200);
    const withUnderscore = `ew_${"a".repeat(16)}_${"_".repeat(43)}`;
    expect(parseApiKey(withUnderscore)).toEqual({ id: "a".repeat(16), secret: "_".repeat(43) });
  });

  test("anything else is not a key", () => {
    for (const bad of [
      "",
      "ew_",
      "ew_abc_def",
      `ew_${"a".repeat(16)}_${"b".repeat(42)}`,
      `xx_${"a".repeat(16)}_${"b".repeat(43)}`,
      `ew_${"A".repeat(16)}_${"b".repeat(43)}`,
      ` ew_${"a".repeat(16)}_${"b".repeat(43)}`,
    ]) {
      expect(parseApiKey(bad)).toBeUndefined();
    }
  });

  test("the store keeps the hash, never the secret; the verifier accepts the key until it is revoked", async () => {
    const store = new MemoryApiKeyStore();
    const { id, key } = await issueApiKey(store, { sub: "svc", scopes: ["orders:read", "not-a-scope"] });
    const record = await store.find(id);
    expect(JSON.stringify(record)).not.toContain(parseApiKey(key)?.secret);
    const verifier = storeApiKeyVerifier(store);
    const principal = await verifier.verify(key);
    expect(principal?.sub).toBe("svc");
    expect(principal?.via).toBe("api-key");
    expect([...(principal?.scopes ?? [])]).toEqual(["orders:read"]);
    const wrongSecret = `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`;
    expect(await verifier.verify(wrongSecret)).toBeUndefined();
    expect(await store.revoke(id)).toBe(true);
    expect(await verifier.verify(key)).toBeUndefined();
    expect(await store.revoke("nope")).toBe(false);
  });
});

describe("MemoryApiKeyStore", () => {
  test("refuses a recorder: it has no transaction to keep a key and its record together", async () => {
    const store = new MemoryApiKeyStore();
    const recorder = async () => undefined;
    await expect(issueApiKey(store, { sub: "svc", scopes: ["orders:read"] }, recorder)).rejects.toMatchObject(
      {
        code: "internal",
      },
    );
    expect(await store.list()).toEqual([]);
  });

  test("a caller whose deadline has fired (answered 504) gets no key, as the Postgres adapter rolls it back", async () => {
    const store = new MemoryApiKeyStore();
    const late = new AbortController();
    late.abort(new Error("deadline"));
    const grant = { sub: "svc", scopes: ["orders:read"] };
    await expect(issueApiKey(store, grant, undefined, late.signal)).rejects.toMatchObject({
      code: "timeout",
    });
    expect(await store.list()).toEqual([]);
    // Within its deadline, the key is made.
    const { id } = await issueApiKey(store, grant, undefined, AbortSignal.timeout(5_000));
    expect((await store.find(id))?.sub).toBe("svc");
  });
});
