// Unit test of group commit against a store double that refuses one row, as SQLite refuses one too large.
import { describe, expect, test } from "bun:test";
import { type CommitView, GroupCommit } from "./group-commit.ts";
import type { TurnCommit } from "./storage.ts";

interface View extends CommitView {
  actor: string;
}

const view = (actor: string): View => ({ actor, poisoned: undefined });
const turn = (state: string): TurnCommit => ({
  state,
  version: 1,
  outbox: [],
  timersAdded: [],
  timersRemoved: [],
  kv: [],
});

/** All or nothing per call, as one transaction; a state "refused" fails the call. */
function store() {
  const rows: string[] = [];
  const commits = new GroupCommit<View>({
    defer: () => {},
    write: (batch) => {
      const states = batch.map((entry) => `${entry.view.actor}:${entry.commit.state}`);
      if (states.some((state) => state.endsWith(":refused"))) throw new Error("string or blob too big");
      rows.push(...states);
    },
  });
  return { rows, commits };
}

const settle = (promise: Promise<void>) =>
  promise.then(
    () => "ok",
    (error: Error) => error.message,
  );

describe("group commit", () => {
  test("a turn the store refuses fails alone: the other actors' turns in its batch commit", async () => {
    const { rows, commits } = store();
    const a = view("a");
    const b = view("b");
    const c = view("c");
    const outcomes = [
      commits.enqueue(a, turn("a1")),
      commits.enqueue(b, turn("refused")),
      commits.enqueue(a, turn("a2")),
      // Computed on top of the refused turn: it must not land.
      commits.enqueue(b, turn("b2")),
      commits.enqueue(c, turn("c1")),
    ].map(settle);
    commits.flush();
    expect(await Promise.all(outcomes)).toEqual([
      "ok",
      "string or blob too big",
      "ok",
      "string or blob too big",
      "ok",
    ]);
    expect(rows).toEqual(["a:a1", "a:a2", "c:c1"]);
    expect(b.poisoned).toBeDefined();
    expect(a.poisoned).toBeUndefined();
    // The poisoned view refuses later turns; the others go on.
    expect(await settle(commits.enqueue(b, turn("b3")))).toBe("string or blob too big");
    const next = settle(commits.enqueue(a, turn("a3")));
    commits.flush();
    expect(await next).toBe("ok");
  });

  test("one actor's turns before the refused one commit; the ones after it fail", async () => {
    const { rows, commits } = store();
    const a = view("a");
    const outcomes = [
      commits.enqueue(a, turn("a1")),
      commits.enqueue(a, turn("refused")),
      commits.enqueue(a, turn("a3")),
    ].map(settle);
    commits.flush();
    expect(await Promise.all(outcomes)).toEqual(["ok", "string or blob too big", "string or blob too big"]);
    expect(rows).toEqual(["a:a1"]);
  });
});

test("turns whose states are near the 2 MB row limit are written a few at a time, not held 512 to a batch", async () => {
  const batches: number[] = [];
  const written: number[] = [];
  const commits = new GroupCommit<View>({
    defer: () => {},
    write: (batch) => {
      batches.push(batch.reduce((chars, entry) => chars + (entry.commit.stateJson?.length ?? 0), 0));
      for (const entry of batch) written.push(entry.commit.version);
    },
  });
  const big = view("big");
  // 100 turns of one actor queued in one macrotask, each holding its ~1.9 MB state text: 190 MB at once before.
  const outcomes = Array.from({ length: 100 }, (_, i) =>
    commits.enqueue(big, {
      ...turn("s"),
      version: i + 1,
      stateJson: `"${String(i % 10).repeat(1_900_000)}"`,
    }),
  );
  commits.flush();
  await Promise.all(outcomes);
  // What a Workers isolate (128 MB) relies on: no batch holds more than about 18 MB of state text.
  expect(Math.max(...batches)).toBeLessThanOrEqual(16 * 1024 * 1024 + 1_900_002);
  // Nothing lost, in order.
  expect(written).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
});
