// touch, remember and evictLeastRecent: a Map's insertion order as its order of last use, bounded.
import { describe, expect, test } from "bun:test";
import { evictLeastRecent, remember, touch } from "./recency.ts";

describe("recency", () => {
  test("touch moves a key to the back; an absent key is not added", () => {
    const map = new Map([
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
    expect(touch(map, "a")).toBe(1);
    expect(touch(map, "z")).toBeUndefined();
    expect([...map.keys()]).toEqual(["b", "c", "a"]);
  });

  test("remember keeps at most the limit, dropping the least recently used", () => {
    const map = new Map<string, number>();
    for (const [key, value] of [
      ["a", 1],
      ["b", 2],
      ["a", 3],
      ["c", 4],
    ] as const)
      remember(map, key, value, 2);
    expect([...map]).toEqual([
      ["a", 3],
      ["c", 4],
    ]);
  });

  test("evictLeastRecent makes room for one, skips what may not go, and looks at most at `scan`", () => {
    const map = new Map([
      ["busy", 0],
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
    const gone: string[] = [];
    evictLeastRecent(map, 3, { evictable: (value) => value > 0, evicted: (_value, key) => gone.push(key) });
    expect([...map.keys()]).toEqual(["busy", "c"]);
    expect(gone).toEqual(["a", "b"]);
    const full = new Map([
      ["x", 0],
      ["y", 0],
      ["z", 1],
    ]);
    evictLeastRecent(full, 1, { scan: 2, evictable: (value) => value > 0 });
    expect(full.size).toBe(3);
  });
});
