// Maps kept in order of last use (least recent first, as a Map keeps insertion order), and bounded by count.

/** Moves `key` to the back of `map` (most recently used) and returns its value; undefined when absent. */
export function touch<K, V>(map: Map<K, V>, key: K): V | undefined {
  if (!map.has(key)) return undefined;
  const value = map.get(key) as V;
  map.delete(key);
  map.set(key, value);
  return value;
}

/** Sets `key` as the most recently used entry of `map`, dropping the least recently used past `limit`. */
export function remember<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > limit) map.delete(map.keys().next().value as K);
}

export interface EvictOptions<K, V> {
  /** Entries looked at, least recently used first, at most (default: all). */
  scan?: number;
  /** False keeps the entry however old it is (busy, open, held). Default: every entry may go. */
  evictable?: (value: V, key: K) => boolean;
  /** Told of each entry removed. */
  evicted?: (value: V, key: K) => void;
}

/**
 * Makes room for one more: removes least recently used entries until `map.size < max`, skipping those `evictable`
 * refuses. With a `scan` bound, a map whose oldest entries all refuse stays over `max` rather than being walked
 * whole on every insertion.
 */
export function evictLeastRecent<K, V>(map: Map<K, V>, max: number, options: EvictOptions<K, V> = {}): void {
  let scanned = 0;
  for (const [key, value] of map) {
    if (map.size < max || scanned++ >= (options.scan ?? Number.POSITIVE_INFINITY)) return;
    if (options.evictable && !options.evictable(value, key)) continue;
    map.delete(key);
    options.evicted?.(value, key);
  }
}
