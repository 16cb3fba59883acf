// The in-memory ReadCache: one process's Map, bounded, least recently used first out. Single-node only.
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import {
  CacheCounters,
  type CachedEntry,
  checkTtl,
  checkVersion,
  defaultFloorTtlSeconds,
  type ReadCache,
  type ReadCacheStats,
} from "./read-cache.ts";

export interface MemoryReadCacheOptions {
  /** Keys kept (each with its floor and value); the least recently used goes first. Default 10,000. */
  maxEntries?: number;
  /**
   * The keys' and values' JSON kept, in characters (about their bytes in memory: the engines hold ASCII text a byte
   * a character), at most; past it the least recently used go first, and a value larger on its own is not kept.
   * Default 16 MiB.
   */
  maxBytes?: number;
  /** Default 3600. */
  floorTtlSeconds?: number;
  clock?: Clock;
}

interface Slot {
  /** What this slot counted in `bytes` when it was last put. */
  bytes: number;
  floor: number;
  floorExpiresAt: number;
  value: { version: number; json: string; expiresAt: number } | undefined;
}

/**
 * Correct only where every advance reaches this same Map: one node, with the cache consumer in its process (the
 * embedded default). A floor is evicted with its key; under a churn of `maxEntries` other keys within one load,
 * a racing older fill could then be stored, for its TTL at most.
 *
 * Bounded by count and by size: an order's view is what its caller wrote (50 items, skus of 128 characters), so
 * 10,000 keys alone let one customer's orders hold about 100 MB here; `maxBytes` keeps it to 16 MiB, which still
 * holds 10,000 typical orders.
 */
export class MemoryReadCache implements ReadCache {
  private readonly slots = new Map<string, Slot>();
  private readonly counters = new CacheCounters();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  /** The sum of the slots' `bytes`. */
  private bytesHeld = 0;
  private readonly floorTtlMs: number;
  private readonly clock: Clock;

  constructor(options: MemoryReadCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.floorTtlMs = (options.floorTtlSeconds ?? defaultFloorTtlSeconds) * 1000;
    this.clock = options.clock ?? systemClock;
    for (const [name, value] of Object.entries({ maxEntries: this.maxEntries, maxBytes: this.maxBytes })) {
      if (!Number.isInteger(value) || value < 1) {
        throw new EdgewiseError("config.invalid", `MemoryReadCache: ${name} must be a positive integer`);
      }
    }
  }

  async get(key: string): Promise<CachedEntry | undefined> {
    const slot = this.live(key);
    if (!slot?.value) {
      this.counters.misses++;
      return undefined;
    }
    this.put(key, slot);
    this.counters.hits++;
    return { version: slot.value.version, value: JSON.parse(slot.value.json) };
  }

  async fill(key: string, version: number, value: unknown, ttlSeconds: number): Promise<void> {
    checkVersion(version);
    checkTtl(ttlSeconds);
    const json = JSON.stringify(value);
    if (json === undefined || key.length + json.length > this.maxBytes) return;
    const slot = this.live(key) ?? this.empty();
    if (version < slot.floor || (slot.value && slot.value.version >= version)) return;
    const now = this.clock.now();
    slot.value = { version, json, expiresAt: now + ttlSeconds * 1000 };
    slot.floor = Math.max(slot.floor, version);
    slot.floorExpiresAt = Math.max(slot.floorExpiresAt, now + Math.max(this.floorTtlMs, ttlSeconds * 1000));
    this.put(key, slot);
  }

  async advance(key: string, version: number): Promise<void> {
    checkVersion(version);
    const slot = this.live(key) ?? this.empty();
    slot.floor = Math.max(slot.floor, version);
    if (slot.value && slot.value.version < version) slot.value = undefined;
    slot.floorExpiresAt = Math.max(slot.floorExpiresAt, this.clock.now() + this.floorTtlMs);
    this.put(key, slot);
  }

  stats(): ReadCacheStats {
    return this.counters.snapshot();
  }

  /** Keys held, for tests and metrics. */
  get size(): number {
    return this.slots.size;
  }

  /** Characters of keys and values held (see `maxBytes`), for tests. */
  get bytes(): number {
    return this.bytesHeld;
  }

  private empty(): Slot {
    return { bytes: 0, floor: 0, floorExpiresAt: 0, value: undefined };
  }

  private remove(key: string, slot: Slot): void {
    this.slots.delete(key);
    this.bytesHeld -= slot.bytes;
  }

  /** The key's slot with expired parts dropped; undefined once its floor expired too. */
  private live(key: string): Slot | undefined {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    const now = this.clock.now();
    if (slot.floorExpiresAt <= now) {
      this.remove(key, slot);
      return undefined;
    }
    if (slot.value && slot.value.expiresAt <= now) slot.value = undefined;
    return slot;
  }

  /** (Re)inserts as the most recently used, evicting the least recently used beyond either bound. */
  private put(key: string, slot: Slot): void {
    const held = this.slots.get(key);
    if (held) this.remove(key, held);
    slot.bytes = key.length + (slot.value?.json.length ?? 0);
    this.slots.set(key, slot);
    this.bytesHeld += slot.bytes;
    while (this.slots.size > this.maxEntries || this.bytesHeld > this.maxBytes) {
      const oldest = this.slots.entries().next();
      if (oldest.done) break;
      this.remove(oldest.value[0], oldest.value[1]);
    }
  }
}
