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
