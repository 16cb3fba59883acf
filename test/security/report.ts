// Counts the attack cases each security category tried, and prints one line per category when its file ends.
import { afterAll, expect } from "bun:test";

export interface AttackCategory {
  /**
   * Records one attack case: `failedClosed` is whether the system refused it (or, for replays, applied it at most
   * once) and changed nothing it should not have. The case's own expectations are asserted as well.
   */
  tried(name: string, failedClosed: boolean): void;
  /** Cases tried so far. */
  readonly count: number;
}

const counts = new Map<string, { tried: number; closed: number; open: string[] }>();

/**
 * One category of the suite (e.g. `ssrf`, `bola`). Call at a file's top level: the summary line
 * `[security] <category>: N cases, N failed closed` is printed after the file's tests, and the file fails if any
 * case failed open or if no case ran at all.
 */
export function attackCategory(category: string): AttackCategory {
  const entry = counts.get(category) ?? { tried: 0, closed: 0, open: [] };
  counts.set(category, entry);
  afterAll(() => {
    console.log(`[security] ${category}: ${entry.tried} cases, ${entry.closed} failed closed`);
    expect(entry.open).toEqual([]);
    expect(entry.tried).toBeGreaterThan(0);
  });
  return {
    tried(name, failedClosed) {
      entry.tried += 1;
      if (failedClosed) entry.closed += 1;
      else entry.open.push(name);
    },
    get count() {
      return entry.tried;
    },
  };
}
