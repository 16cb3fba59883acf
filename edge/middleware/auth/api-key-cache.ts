// An ApiKeyVerifier that remembers store lookups for a short time, so a hot key costs no query per request.
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import type { ApiKeyRecord, ApiKeyStore } from "./api-key-store.ts";
import { type ApiKeyVerifier, parseApiKey, principalForKey } from "./api-keys.ts";

export interface ApiKeyCacheOptions {
  /**
   * How long a lookup (found, revoked or unknown) is trusted. The bound on revocation: every node refuses a
   * revoked key at most `ttlMs` after the revoke commits. Entries are stamped when their query starts and
   * only local elapsed time is measured, so node clocks need not agree with each other or the database;
   * the age is read off the clock's monotonic time, which a step of the wall clock does not move, and the default 4 s
   * leaves 1 s of API.md's 5 s for requests already past the check.
   */
  ttlMs?: number;
  /** Only its monotonic time is read. Default `systemClock`. */
  clock?: Clock;
  /** The least recently used entry goes when the cache is full. */
  maxEntries?: number;
}

export interface CachedApiKeyVerifier extends ApiKeyVerifier {
  /** Drops one id at once: a revoke on this node then takes effect here immediately. */
  forget(id: string): void;
  readonly size: number;
}

const defaults = { ttlMs: 4_000, clock: systemClock, maxEntries: 10_000 };

interface Entry {
  expiresAt: number;
  record: ApiKeyRecord | undefined;
}

export function cachedApiKeyVerifier(
  store: Pick<ApiKeyStore, "find">,
  options: ApiKeyCacheOptions = {},
): CachedApiKeyVerifier {
  const { ttlMs, clock, maxEntries } = { ...defaults, ...options };
  const entries = new Map<string, Entry>();

  async function lookup(id: string): Promise<ApiKeyRecord | undefined> {
    const now = clock.monotonic();
    const hit = entries.get(id);
    if (hit) {
      entries.delete(id);
      if (hit.expiresAt > now) {
        entries.set(id, hit); // re-inserted: Map order is recency order
        return hit.record;
      }
    }
    // Only settled answers are kept, never a pending query: on Workers, a promise begun in one request and
    // awaited by another can hang once the first request ends. A failed query throws and caches nothing.
    const record = await store.find(id);
    // Stamped with the time before the query: the answer is at least that fresh, so never older than ttl.
    entries.set(id, { expiresAt: now + ttlMs, record });
    if (entries.size > maxEntries) {
      const oldest = entries.keys().next().value;
      if (oldest !== undefined) entries.delete(oldest);
    }
    return record;
  }

  return {
    async verify(key) {
      const parsed = parseApiKey(key);
      return parsed ? principalForKey(parsed, await lookup(parsed.id)) : undefined;
    },
    forget(id) {
      entries.delete(id);
    },
    get size() {
      return entries.size;
    },
  };
}
