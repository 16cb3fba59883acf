// Dependencies: one breaker per name, and a bound on the many-of-a-kind ones (`webhook:<host>`).
import { expect, test } from "bun:test";
import { ManualClock } from "../clock/index.ts";
import { Dependencies } from "./dependencies.ts";

const ok = async () => "ok";
const fail = async () => {
  throw new Error("down");
};

test("breakers of one kind (webhook:<host>) are bounded: the least recently used closed one goes first", async () => {
  const dependencies = new Dependencies({ maxInstanceBreakers: 100 });
  await dependencies.call("postgres", ok);
  await dependencies.call("webhook:hot.example", ok);
  for (let i = 0; i < 5_000; i++) {
    await dependencies.call(`webhook:h${i}.example`, ok);
    if (i % 50 === 0) await dependencies.call("webhook:hot.example", ok);
  }
  const names = dependencies.snapshots().map((snapshot) => snapshot.name);
  expect(names.filter((name) => name.startsWith("webhook:"))).toHaveLength(100);
  // Names without a kind (the node's own dependencies) are never evicted; a breaker in use stays, with its counts.
  expect(names).toContain("postgres");
  expect(names).toContain("webhook:hot.example");
  expect(names).toContain("webhook:h4999.example");
  expect(names).not.toContain("webhook:h0.example");
  const hot = dependencies.snapshots().find((snapshot) => snapshot.name === "webhook:hot.example");
  expect(hot?.totals.success).toBe(101);
});

test("an open breaker is never evicted: a failing receiver keeps failing fast however many others are called", async () => {
  const clock = new ManualClock(0);
  const transitions: string[] = [];
  const dependencies = new Dependencies({
    clock,
    maxInstanceBreakers: 10,
    onStateChange: (change) => transitions.push(`${change.name} ${change.to}`),
  });
  for (let i = 0; i < 5; i++) await dependencies.call("webhook:down.example", fail).catch(() => {});
  expect(dependencies.state("webhook:down.example")).toBe("open");
  for (let i = 0; i < 100; i++) await dependencies.call(`webhook:h${i}.example`, ok);
  expect(dependencies.state("webhook:down.example")).toBe("open");
  await expect(dependencies.call("webhook:down.example", ok)).rejects.toMatchObject({ code: "breaker.open" });
  expect(dependencies.snapshots().length).toBeLessThanOrEqual(11);
  expect(dependencies.transitionCounts()).toContainEqual({
    name: "webhook:down.example",
    from: "closed",
    to: "open",
    count: 1,
  });

  // Once it may half-open, it is one like the others: evicted when the least recently used, with its counts.
  clock.advance(5_000);
  for (let i = 100; i < 120; i++) await dependencies.call(`webhook:h${i}.example`, ok);
  expect(dependencies.snapshots().map((snapshot) => snapshot.name)).not.toContain("webhook:down.example");
  expect(dependencies.transitionCounts().map((count) => count.name)).not.toContain("webhook:down.example");
  expect(dependencies.state("webhook:down.example")).toBe("closed");
  expect(transitions).toEqual(["webhook:down.example open"]);
});

test("tallies: the breakers of a kind are one row (webhook, not a host each), whose sums never go down as its breakers are evicted", async () => {
  const clock = new ManualClock(0);
  const dependencies = new Dependencies({ clock, maxInstanceBreakers: 10 });
  await dependencies.call("postgres", ok);
  for (let i = 0; i < 5; i++) await dependencies.call("webhook:down.example", fail).catch(() => {});
  for (let i = 0; i < 100; i++) await dependencies.call(`webhook:h${i}.example`, ok);
  const row = (name: string) => dependencies.tallies().find((tally) => tally.dependency === name);

  expect(dependencies.tallies().map((tally) => tally.dependency)).toEqual(["postgres", "webhook"]);
  expect(row("postgres")).toEqual({
    dependency: "postgres",
    states: { closed: 1, open: 0, "half-open": 0 },
    totals: { success: 1, failure: 0, slow: 0, rejected: 0, ignored: 0 },
    transitions: new Map(),
  });
  // Ten breakers kept (the open one among them); the 91 evicted still count in the sums.
  expect(row("webhook")?.states).toEqual({ closed: 9, open: 1, "half-open": 0 });
  expect(row("webhook")?.totals).toMatchObject({ success: 100, failure: 5 });
  expect(row("webhook")?.transitions).toEqual(new Map([["closed|open", 1]]));

  // Once the open one is evicted too, its failures and its trip stay counted.
  clock.advance(5_000);
  for (let i = 100; i < 120; i++) await dependencies.call(`webhook:h${i}.example`, ok);
  expect(dependencies.snapshots().map((snapshot) => snapshot.name)).not.toContain("webhook:down.example");
  expect(row("webhook")?.states).toEqual({ closed: 10, open: 0, "half-open": 0 });
  expect(row("webhook")?.totals).toMatchObject({ success: 120, failure: 5 });
  expect(row("webhook")?.transitions.get("closed|open")).toBe(1);
});
