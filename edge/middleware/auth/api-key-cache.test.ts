// Unit tests for the caching API key verifier: the ttl bound on revocation, negative caching, LRU size.
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../../shared/clock/index.ts";
import { cachedApiKeyVerifier } from "./api-key-cache.ts";
import { MemoryApiKeyStore } from "./api-key-store.ts";
import { issueApiKey } from "./api-keys.ts";

async function setup(ttlMs = 4000, maxEntries?: number) {
  const store = new MemoryApiKeyStore();
  const clock = new ManualClock();
  const verifier = cachedApiKeyVerifier(store, { ttlMs, clock, ...(maxEntries ? { maxEntries } : {}) });
  const issued = await issueApiKey(store, { sub: "svc", scopes: ["orders:read"] });
  return { store, clock, verifier, ...issued };
}

describe("cachedApiKeyVerifier", () => {
  test("one store lookup per id per ttl", async () => {
    const { store, clock, verifier, key } = await setup();
    for (let i = 0; i < 20; i++) expect((await verifier.verify(key))?.sub).toBe("svc");
    expect(store.finds).toBe(1);
    clock.advance(4000);
    await verifier.verify(key);
    expect(store.finds).toBe(2);
  });

  test("a revoked key keeps working at most ttl, then stops", async () => {
    const { store, clock, verifier, id, key } = await setup();
    await verifier.verify(key);
    await store.revoke(id);
    clock.advance(3999);
    expect(await verifier.verify(key)).toBeDefined();
    clock.advance(1);
    expect(await verifier.verify(key)).toBeUndefined();
  });

  test("a revoked key stops within ttl though the wall clock steps back an hour", async () => {
    const { store, clock, verifier, id, key } = await setup();
    await verifier.verify(key);
    await store.revoke(id);
    clock.step(-3_600_000);
    clock.advance(4000);
    expect(await verifier.verify(key)).toBeUndefined();
  });

  test("forget drops the entry at once", async () => {
    const { store, verifier, id, key } = await setup();
    await verifier.verify(key);
    await store.revoke(id);
    verifier.forget(id);
    expect(await verifier.verify(key)).toBeUndefined();
  });

  test("unknown ids are cached too, and a wrong secret for a known id costs no lookup", async () => {
    const { store, verifier, key } = await setup();
    const unknown = `ew_${"0".repeat(16)}_${"x".repeat(43)}`;
    for (let i = 0; i < 5; i++) expect(await verifier.verify(unknown)).toBeUndefined();
    expect(store.finds).toBe(1);
    await verifier.verify(key);
    const wrongSecret = `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`;
    for (let i = 0; i < 5; i++) expect(await verifier.verify(wrongSecret)).toBeUndefined();
    expect(store.finds).toBe(2);
    // Malformed keys never reach the store.
    expect(await verifier.verify("ew_nope")).toBeUndefined();
    expect(store.finds).toBe(2);
  });

  test("a failed lookup is not cached: the next request asks again", async () => {
    let finds = 0;
    let fail = true;
    const verifier = cachedApiKeyVerifier({
      async find() {
        finds++;
        if (fail) throw new Error("database down");
        return undefined;
      },
    });
    const key = `ew_${"1".repeat(16)}_${"y".repeat(43)}`;
    await expect(verifier.verify(key)).rejects.toThrow("database down");
    expect(verifier.size).toBe(0);
    fail = false;
    expect(await verifier.verify(key)).toBeUndefined();
    expect(await verifier.verify(key)).toBeUndefined();
    expect(finds).toBe(2);
  });

  test("the cache is bounded, dropping the least recently used id", async () => {
    const { store, verifier, key } = await setup(4000, 3);
    await verifier.verify(key);
    for (let i = 0; i < 3; i++) {
      await verifier.verify(`ew_${String(i).repeat(16)}_${"z".repeat(43)}`);
      await verifier.verify(key); // keeps the real key recent
    }
    expect(verifier.size).toBe(3);
    const before = store.finds;
    await verifier.verify(key);
    expect(store.finds).toBe(before); // still cached
    await verifier.verify(`ew_${"0".repeat(16)}_${"z".repeat(43)}`); // evicted earlier: looked up again
    expect(store.finds).toBe(before + 1);
  });
});
