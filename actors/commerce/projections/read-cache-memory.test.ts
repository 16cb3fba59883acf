// MemoryReadCache under a flood of large values: held by size as well as by count, and a hot key still hits.
import { heapStats } from "bun:jsc";
import { expect, test } from "bun:test";
import { MemoryReadCache } from "./read-cache-memory.ts";

/** The largest order view a caller can make: 50 items with skus of 128 characters (about 9,900 characters). */
function largestOrder(n: number) {
  return {
    orderId: `idem-${String(n).padStart(24, "0")}`,
    customerId: `c${"x".repeat(120)}${n}`.slice(0, 128),
    status: "rejected",
    reason: "out_of_stock",
    items: Array.from({ length: 50 }, (_, i) => ({
      sku: `${i}-${n}-${"s".repeat(128)}`.slice(0, 128),
      quantity: 1_000_000,
      unitPriceCents: Number.MAX_SAFE_INTEGER,
    })),
    createdAt: "2026-12-07T10:00:00.000Z",
    updatedAt: "2026-12-07T10:00:01.000Z",
    version: 3,
  };
}

test("50,000 of the largest order views: the cache holds at most 16 MiB of them, and a hot order still hits", async () => {
  Bun.gc(true);
  const heapBefore = heapStats().heapSize;
  const cache = new MemoryReadCache();
  const hot = {
    orderId: "o-hot",
    customerId: "alice",
    status: "confirmed",
    items: [{ sku: "lamp", quantity: 1 }],
  };
  await cache.fill("order:o-hot", 2, hot, 3600);
  for (let n = 0; n < 50_000; n++) {
    await cache.fill(`order:${n}`, 3, largestOrder(n), 3600);
    // The hot order is read between the others, as a popular one would be: it stays, being the most recently used.
    if (n % 500 === 0) expect(await cache.get("order:o-hot")).toEqual({ version: 2, value: hot });
  }
  Bun.gc(true);
  const heldMb = (heapStats().heapSize - heapBefore) / 1e6;
  // Before the size bound, 10,000 of them held about 100 MB.
  expect(heldMb).toBeLessThan(40);
  expect(cache.bytes).toBeLessThanOrEqual(16 * 1024 * 1024);
  expect(cache.size).toBeGreaterThan(1_000);
  expect(cache.size).toBeLessThan(10_000);
  // What users rely on still holds: the hot order, the newest of the flood, and a version floor's refusal.
  expect(await cache.get("order:o-hot")).toEqual({ version: 2, value: hot });
  expect((await cache.get("order:49999"))?.value).toEqual(largestOrder(49_999));
  expect(await cache.get("order:0")).toBeUndefined();
  await cache.advance("order:o-hot", 4);
  await cache.fill("order:o-hot", 3, hot, 3600);
  expect(await cache.get("order:o-hot")).toBeUndefined();
}, 60_000);

test("typical orders are held by count (10,000), not by size; a value over the size bound is not kept", async () => {
  const cache = new MemoryReadCache({ maxBytes: 10_000 });
  for (let n = 0; n < 100; n++)
    await cache.fill(`order:${n}`, 1, { orderId: `o${n}`, status: "pending" }, 60);
  expect(cache.size).toBe(100);
  expect(cache.bytes).toBeLessThanOrEqual(10_000);
  await cache.fill("order:big", 1, { text: "x".repeat(12_000) }, 60);
  expect(await cache.get("order:big")).toBeUndefined();
  // Refused without evicting what was there.
  expect(cache.size).toBe(100);
  const small = new MemoryReadCache();
  for (let n = 0; n < 12_000; n++)
    await small.fill(`order:${n}`, 1, { orderId: `o${n}`, customerId: "alice", status: "confirmed" }, 60);
  expect(small.size).toBe(10_000);
  expect(() => new MemoryReadCache({ maxBytes: 0 })).toThrow(/maxBytes/);
});
