// How the read routes use the Redis read cache: read-through, with a version so an older fill never wins.
import { header } from "../../openapi.ts";

export interface CachedReads {
  /**
   * The cached value under `key`, or `load()`'s, stored when `cacheable` says so. `load` returns the
   * aggregate's version with it; the cache refuses a fill older than an invalidation it has seen.
   */
  read(
    key: string,
    load: () => Promise<{ version: number; value: unknown }>,
    options?: { cacheable?: (value: unknown) => boolean },
  ): Promise<{ value: unknown; hit: boolean }>;
  /**
   * After a write through the gateway, raises `key`'s floor to the version the write returned, so the next read
   * loads the new value instead of serving the old one until the write's event reaches the cache consumer. Never
   * throws: a Redis cache that fails applies it once Redis answers again, and the write's event does so too.
   */
  advance(key: string, version: number): Promise<void>;
}

/** Tells the client where a read came from: `X-Cache: hit` or `miss` (counted in the cache's stats too). */
export const cacheHeader = "X-Cache";

/** The header as /openapi.json documents it on a cached read's answer. */
export const cacheHeaders = {
  [cacheHeader]: header("Where the read came from: the read cache (hit) or the actor (miss)", {
    type: "string",
    enum: ["hit", "miss"],
  }),
};

/** No cache: every read loads. */
export const noCache: CachedReads = {
  read: async (_key, load) => ({ value: (await load()).value, hit: false }),
  advance: async () => {},
};
