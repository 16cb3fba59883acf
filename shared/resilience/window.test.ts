// The sliding windows: a count window's running totals, and a time window's bucket eviction at the edges.
import { describe, expect, test } from "bun:test";
import { outcomeWindow } from "./window.ts";

const failure = { failure: true, slow: false };
const slow = { failure: false, slow: true };
const fine = { failure: false, slow: false };

describe("count window", () => {
  test("keeps the totals of exactly the last N calls", () => {
    const window = outcomeWindow({ kind: "count", size: 3 });
    for (const call of [failure, slow, fine]) window.record(call, 0);
    expect(window.totals(0)).toEqual({ calls: 3, failures: 1, slow: 1 });
    window.record(fine, 0); // evicts the failure
    expect(window.totals(0)).toEqual({ calls: 3, failures: 0, slow: 1 });
    window.record({ failure: true, slow: true }, 0); // evicts the slow one
    expect(window.totals(0)).toEqual({ calls: 3, failures: 1, slow: 1 });
    window.clear();
    expect(window.totals(0)).toEqual({ calls: 0, failures: 0, slow: 0 });
  });

  test("totals stay exact over many wraps", () => {
    const window = outcomeWindow({ kind: "count", size: 7 });
    const history: boolean[] = [];
    for (let index = 0; index < 1_000; index++) {
      const failed = (index * 7919) % 3 === 0;
      history.push(failed);
      window.record({ failure: failed, slow: false }, 0);
    }
    expect(window.totals(0).failures).toBe(history.slice(-7).filter(Boolean).length);
  });
});

describe("time window", () => {
  test("a bucket leaves once it lies wholly before now − span", () => {
    const window = outcomeWindow({ kind: "time", ms: 1_000, buckets: 10 });
    window.record(failure, 0); // bucket [0, 100)
    window.record(fine, 150); // bucket [100, 200)
    expect(window.totals(1_099).calls).toBe(2);
    expect(window.totals(1_100)).toEqual({ calls: 1, failures: 0, slow: 0 });
    expect(window.totals(1_200).calls).toBe(0);
  });

  test("calls in one slice share a bucket", () => {
    const window = outcomeWindow({ kind: "time", ms: 1_000 });
    for (let at = 0; at < 100; at += 10) window.record(slow, at);
    expect(window.totals(100)).toEqual({ calls: 10, failures: 0, slow: 10 });
  });
});
