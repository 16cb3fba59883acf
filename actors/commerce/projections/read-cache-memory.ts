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
  /** Default 3600. */
  floorTtlSeconds?: number;
  clock?: Clock;
}

interface Slot {
  floor: number;
  floorExpiresAt: number;
  value: { version: number; json: string; expiresAt: number } | undefined;
}

/**
 * Correct only where every advance reaches this same Map: one node, with the cache consumer in its process (the
 * embedded default). A floor is evicted with its key; under a churn of `maxEntries` other keys within one load,
 * a racing older fill could then be stored, for its TTL at most.
 */
export class MemoryReadCache implements ReadCache {
  private readonly slots = new Map<string, Slot>();
  private readonly counters = new CacheCounters();
  private readonly maxEntries: number;
  private readonly floorTtlMs: number;
  private readonly clock: Clock;

  constructor(options: MemoryReadCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.floorTtlMs = (options.floorTtlSeconds ?? defaultFloorTtlSeconds) * 1000;
    this.clock = options.clock ?? systemClock;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new EdgewiseError("config.invalid", "MemoryReadCache: maxEntries must be a positive integer");
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
    if (json === undefined) return;
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

  private empty(): Slot {
    return { floor: 0, floorExpiresAt: 0, value: undefined };
  }

  /** The key's slot with expired parts dropped; undefined once its floor expired too. */
  private live(key: string): Slot | undefined {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    const now = this.clock.now();
    if (slot.floorExpiresAt <= now) {
      this.slots.delete(key);
      return undefined;
    }
    if (slot.value && slot.value.expiresAt <= now) slot.value = undefined;
    return slot;
  }

  /** (Re)inserts as the most recently used, evicting the least recently used beyond the bound. */
  private put(key: string, slot: Slot): void {
    this.slots.delete(key);
    this.slots.set(key, slot);
    while (this.slots.size > this.maxEntries) {
      const oldest = this.slots.keys().next();
      if (oldest.done) break;
      this.slots.delete(oldest.value);
    }
  }
}
