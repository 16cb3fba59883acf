// Breakers shared between Workers isolates, under Bun: the coordinator's state machine, and each isolate's sync
// logic against a fake coordinator port (the Durable Object itself runs in coordinator-workerd.test.ts).
import { describe, expect, test } from "bun:test";
import {
  type BreakerReport,
  type CoordinationPolicy,
  defaultCoordinationPolicy,
  SharedBreaker,
  type SharedView,
} from "../../actors/hosts/cloudflare/breaker-shared.ts";
import {
  type BreakerCoordinatorPort,
  CoordinatedDependencies,
  type CoordinationOptions,
} from "../../actors/hosts/cloudflare/coordinated-dependencies.ts";
import { ManualClock } from "../../shared/clock/index.ts";
import { CircuitBreaker, isBreakerOpen } from "../../shared/resilience/index.ts";

const policy: CoordinationPolicy = { ...defaultCoordinationPolicy, resetTimeoutMs: 5_000, probePermits: 1 };

function report(isolate: string, overrides: Partial<BreakerReport> = {}): BreakerReport {
  return {
    isolate,
    policy,
    generation: undefined,
    counts: { calls: 0, failures: 0 },
    events: [],
    wantsProbe: false,
    ...overrides,
  };
}

describe("the coordinator's shared breaker", () => {
  test("a reported local trip opens it for every isolate, until resetTimeoutMs", () => {
    const clock = new ManualClock();
    const shared = new SharedBreaker(clock);
    const trip = shared.report(
      report("a", { generation: 0, events: [{ to: "open", reason: "consecutive-failures", generation: 0 }] }),
    );
    expect(trip.changed).toBe(true);
    expect(trip.view).toEqual({ state: "open", generation: 1, retryInMs: 5_000 });
    clock.advance(2_000);
    expect(shared.report(report("b", { generation: 0 })).view).toEqual({
      state: "open",
      generation: 1,
      retryInMs: 3_000,
    });
  });

  test("counts that trip no isolate alone add up to a trip", () => {
    const clock = new ManualClock();
    const shared = new SharedBreaker(clock);
    for (const isolate of ["a", "b"]) {
      const { view } = shared.report(report(isolate, { generation: 0, counts: { calls: 2, failures: 2 } }));
      expect(view.state).toBe("closed");
    }
    const { view } = shared.report(report("c", { generation: 0, counts: { calls: 2, failures: 1 } }));
    expect(view.state).toBe("open");
    expect(shared.snapshot().reason).toBe("failure-rate");
  });

  test("counts older than the window are forgotten", () => {
    const clock = new ManualClock();
    const shared = new SharedBreaker(clock);
    shared.report(report("a", { generation: 0, counts: { calls: 4, failures: 4 } }));
    clock.advance(policy.windowMs + 1);
    const { view } = shared.report(report("b", { generation: 0, counts: { calls: 1, failures: 1 } }));
    expect(view.state).toBe("closed");
  });

  test("half-open: at most probePermits isolates probe at once; a lapsed lease is handed on", () => {
    const clock = new ManualClock();
    const shared = new SharedBreaker(clock);
    const twoPermits = { ...policy, probePermits: 2, probeLeaseMs: 3_000 };
    const open = { generation: 0, policy: twoPermits };
    shared.report(report("a", { ...open, events: [{ to: "open", reason: "failure-rate", generation: 0 }] }));
    clock.advance(5_000);
    const ask = (isolate: string) =>
      shared.report(report(isolate, { generation: 1, policy: twoPermits, wantsProbe: true })).view;
    expect(ask("a").permit).toEqual({ leaseMs: 3_000 });
    expect(ask("b").permit).toEqual({ leaseMs: 3_000 });
    const refused = ask("c");
    expect(refused.state).toBe("half-open");
    expect(refused.permit).toBeUndefined();
    expect(refused.retryInMs).toBe(1_000);
    // Asking again does not renew a permit: "a" keeps what is left of its lease.
    clock.advance(1_000);
    expect(ask("a").permit).toEqual({ leaseMs: 2_000 });
    clock.advance(2_000);
    expect(ask("c").permit).toEqual({ leaseMs: 3_000 });
    expect(
      shared
        .snapshot()
        .permits.map((permit) => permit.isolate)
        .sort(),
    ).toEqual(["c"]);
  });

  test("the first probe outcome decides: success closes, failure reopens", () => {
    const clock = new ManualClock();
    const shared = new SharedBreaker(clock);
    shared.report(
      report("a", { generation: 0, events: [{ to: "open", reason: "failure-rate", generation: 0 }] }),
    );
    clock.advance(5_000);
    shared.report(report("a", { generation: 1, wantsProbe: true }));
    const failed = shared.report(
      report("a", { generation: 1, events: [{ to: "open", reason: "probe-failed", generation: 1 }] }),
    );
    expect(failed.view).toEqual({ state: "open", generation: 2, retryInMs: 5_000 });
    clock.advance(5_000);
    shared.report(report("b", { generation: 2, wantsProbe: true }));
    const closed = shared.report(
      report("b", { generation: 2, events: [{ to: "closed", reason: "probes-succeeded", generation: 2 }] }),
    );
    expect(closed.view).toEqual({ state: "closed", generation: 3 });
    expect(shared.snapshot().permits).toEqual([]);
  });

  test("an event from an older generation is stale and dropped", () => {
    const clock = new ManualClock();
    const shared = new SharedBreaker(clock);
    shared.report(
      report("a", { generation: 0, events: [{ to: "open", reason: "failure-rate", generation: 0 }] }),
    );
    clock.advance(5_000);
    shared.report(
      report("a", { generation: 1, events: [{ to: "closed", reason: "probes-succeeded", generation: 1 }] }),
    );
    // "b" tripped on what it saw before the recovery it has not heard of.
    const stale = shared.report(
      report("b", { generation: 0, events: [{ to: "open", reason: "consecutive-failures", generation: 0 }] }),
    );
    expect(stale.view).toEqual({ state: "closed", generation: 2 });
    expect(stale.changed).toBe(false);
    expect(shared.snapshot().staleEvents).toBe(1);
  });

  test("its record restores it: an open dependency stays open across a restart", () => {
    const clock = new ManualClock();
    const first = new SharedBreaker(clock);
    first.report(report("a", { events: [{ to: "open", reason: "failure-rate", generation: undefined }] }));
    const second = new SharedBreaker(clock, first.record);
    clock.advance(1_000);
    expect(second.report(report("b")).view).toEqual({ state: "open", generation: 1, retryInMs: 4_000 });
  });

  test("a policy out of range falls back to the defaults", () => {
    const shared = new SharedBreaker(new ManualClock());
    const bad = { ...policy, probePermits: 0, resetTimeoutMs: Number.NaN } as CoordinationPolicy;
    shared.report(
      report("a", { policy: bad, events: [{ to: "open", reason: "failure-rate", generation: undefined }] }),
    );
    expect(shared.snapshot().openUntil).toBe(
      new ManualClock().now() + defaultCoordinationPolicy.resetTimeoutMs,
    );
  });
});

/** A coordinator in memory: the real state machine, with the failures a network brings. */
class FakeCoordinator implements BreakerCoordinatorPort {
  readonly shared = new Map<string, SharedBreaker>();
  readonly reports: Array<{ dependency: string; report: BreakerReport }> = [];
  mode: "up" | "down" | "hang" = "up";
  /** When set, answers wait for it (a slow coordinator). */
  gate: Promise<void> | undefined;

  constructor(private readonly clock: ManualClock) {}

  async sync(dependency: string, report: BreakerReport): Promise<SharedView> {
    if (this.mode === "down") throw new Error("coordinator down");
    if (this.mode === "hang") return new Promise<SharedView>(() => {});
    this.reports.push({ dependency, report: structuredClone(report) });
    let shared = this.shared.get(dependency);
    if (!shared) {
      shared = new SharedBreaker(this.clock);
      this.shared.set(dependency, shared);
    }
    const { view } = shared.report(structuredClone(report));
    if (this.gate) await this.gate;
    return structuredClone(view);
  }
}

/** One "request": its waitUntil promises, awaited together afterwards. */
class Background {
  readonly pending: Array<Promise<unknown>> = [];
  readonly waitUntil = (promise: Promise<unknown>) => {
    this.pending.push(promise);
  };
  async settle(): Promise<void> {
    while (this.pending.length > 0) await Promise.all(this.pending.splice(0));
  }
}

const coordination: CoordinationOptions = {
  syncIntervalMs: 5_000,
  syncTimeoutMs: 50,
  graceMs: 3_000,
  probePermits: 1,
  probeLeaseMs: 4_000,
};

function isolate(
  id: string,
  clock: ManualClock,
  coordinator: BreakerCoordinatorPort | undefined,
  logs: string[] = [],
) {
  return new CoordinatedDependencies({
    coordinator,
    isolate: id,
    clock,
    coordination,
    policies: { db: { timeoutMs: 1_000, breaker: { consecutiveFailures: 3, resetTimeoutMs: 5_000 } } },
    log: (line) => logs.push(line),
  });
}

/** A dependency call, counted; `ok: false` fails it. Resolves to what the caller saw. */
async function call(
  deps: CoordinatedDependencies,
  calls: { count: number },
  ok: boolean,
): Promise<"ok" | "failed" | "breaker.open"> {
  try {
    await deps.call("db", async () => {
      calls.count += 1;
      if (!ok) throw new Error("db down");
    });
    return "ok";
  } catch (error) {
    return isBreakerOpen(error) ? "breaker.open" : "failed";
  }
}

/** A request in an isolate: tick at the start and end, as the Worker does, then its background settles. */
async function request<T>(deps: CoordinatedDependencies, work: () => Promise<T>): Promise<T> {
  const background = new Background();
  deps.tick(background.waitUntil);
  try {
    return await work();
  } finally {
    deps.tick(background.waitUntil);
    await background.settle();
  }
}

describe("an isolate's breakers, synced through the coordinator", () => {
  test("a trip in A makes B fail fast once B syncs, without B calling the dependency", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const a = isolate("a", clock, coordinator);
    const b = isolate("b", clock, coordinator);
    const aCalls = { count: 0 };
    const bCalls = { count: 0 };
    expect(await request(b, () => call(b, bCalls, true))).toBe("ok");
    clock.advance(3_000);
    for (let i = 0; i < 3; i++) expect(await request(a, () => call(a, aCalls, false))).toBe("failed");
    expect(a.state("db")).toBe("open");
    expect(coordinator.shared.get("db")?.snapshot().state).toBe("open");

    // B has not synced since: its breaker is closed and still calls.
    expect(await request(b, () => call(b, bCalls, true))).toBe("ok");
    clock.advance(2_000);
    // Its interval sync runs in the request's background; the request itself never waits for it.
    expect(await request(b, () => call(b, bCalls, true))).toBe("ok");
    expect(b.state("db")).toBe("open");
    const before = bCalls.count;
    expect(await call(b, bCalls, true)).toBe("breaker.open");
    expect(bCalls.count).toBe(before);
    // Held open until the coordinator's reopen time (3 s from now) plus the grace; Retry-After says so.
    const snapshot = b.snapshots().find((s) => s.name === "db");
    expect(snapshot?.halfOpensAt).toBe(clock.now() + 3_000 + coordination.graceMs!);
  });

  test("after the reset time one isolate gets the probe; its success closes every isolate", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const [a, b, c] = ["a", "b", "c"].map((id) => isolate(id, clock, coordinator)) as [
      CoordinatedDependencies,
      CoordinatedDependencies,
      CoordinatedDependencies,
    ];
    const calls = { count: 0 };
    for (const deps of [b, c]) await request(deps, () => call(deps, calls, true));
    for (let i = 0; i < 3; i++) await request(a, () => call(a, calls, false));
    await b.syncNow();
    await c.syncNow();
    expect([a, b, c].map((deps) => deps.state("db"))).toEqual(["open", "open", "open"]);

    clock.advance(5_000);
    // Each is past the reopen time and asks; the coordinator grants one permit.
    for (const deps of [b, a, c]) await deps.syncNow();
    expect([a, b, c].map((deps) => deps.status()[0]?.permit)).toEqual([false, true, false]);
    expect(await call(a, calls, true)).toBe("breaker.open");
    expect(await call(c, calls, true)).toBe("breaker.open");
    const before = calls.count;
    expect(await request(b, () => call(b, calls, true))).toBe("ok");
    expect(calls.count).toBe(before + 1);
    expect(b.state("db")).toBe("closed");
    expect(coordinator.shared.get("db")?.snapshot().state).toBe("closed");

    // A and C learn at their next sync (at the latest one poll later) and call again.
    clock.advance(1_000);
    expect(await request(a, () => call(a, calls, true))).toBe("breaker.open");
    expect(a.state("db")).toBe("closed");
    expect(await call(a, calls, true)).toBe("ok");
    await c.syncNow();
    expect(await call(c, calls, true)).toBe("ok");
  });

  test("a failed probe reopens the dependency for every isolate", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const a = isolate("a", clock, coordinator);
    const b = isolate("b", clock, coordinator);
    const calls = { count: 0 };
    await request(b, () => call(b, calls, true));
    for (let i = 0; i < 3; i++) await request(a, () => call(a, calls, false));
    clock.advance(5_000);
    await a.syncNow();
    await b.syncNow();
    expect(a.status()[0]?.permit).toBe(true);
    expect(await request(a, () => call(a, calls, false))).toBe("failed");
    expect(coordinator.shared.get("db")?.snapshot()).toMatchObject({ state: "open", generation: 2 });
    await b.syncNow();
    expect(b.status()[0]).toMatchObject({ local: "open", held: true, generation: 2 });
  });

  test("no RPC per call: between transitions an isolate reports at most once per interval", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const a = isolate("a", clock, coordinator);
    const calls = { count: 0 };
    for (let i = 0; i < 60; i++) {
      await request(a, () => call(a, calls, true));
      clock.advance(100);
    }
    // The first request syncs (a new breaker learns the shared state), then one per 5 s of traffic.
    expect(coordinator.reports.map((entry) => entry.report.counts)).toEqual([
      { calls: 1, failures: 0 },
      { calls: 49, failures: 0 },
    ]);
    // The calls since are reported once; then a dependency it stopped calling is not synced at all.
    clock.advance(60_000);
    await request(a, async () => {});
    expect(coordinator.reports.at(-1)?.report.counts).toEqual({ calls: 10, failures: 0 });
    clock.advance(60_000);
    await request(a, async () => {});
    expect(coordinator.reports.length).toBe(3);
  });

  test("a coordinator that is down fails no request: the breaker runs alone, and reports once it is back", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const logs: string[] = [];
    const a = isolate("a", clock, coordinator, logs);
    const calls = { count: 0 };
    coordinator.mode = "down";
    expect(await request(a, () => call(a, calls, true))).toBe("ok");
    for (let i = 0; i < 3; i++) expect(await request(a, () => call(a, calls, false))).toBe("failed");
    expect(a.state("db")).toBe("open");
    expect(logs.filter((line) => line.includes("unreachable"))).toHaveLength(1);
    // Alone, it half-opens after its own reset timeout and probes.
    clock.advance(5_000);
    expect(await request(a, () => call(a, calls, true))).toBe("ok");
    expect(a.state("db")).toBe("closed");

    coordinator.mode = "up";
    clock.advance(5_000);
    await request(a, async () => {});
    expect(logs.at(-1)).toContain("reachable again");
    // The trip it missed reporting reached the coordinator (its probe success too: the dependency is back).
    const reasons = coordinator.reports.flatMap((entry) => entry.report.events.map((event) => event.reason));
    expect(reasons).toEqual(["consecutive-failures", "probes-succeeded"]);
    expect(coordinator.shared.get("db")?.snapshot().state).toBe("closed");
  });

  test("a hold lapses graceMs after the reopen time when no permit comes: the isolate probes alone", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const a = isolate("a", clock, coordinator);
    const b = isolate("b", clock, coordinator);
    const calls = { count: 0 };
    await request(b, () => call(b, calls, true));
    for (let i = 0; i < 3; i++) await request(a, () => call(a, calls, false));
    await b.syncNow();
    coordinator.mode = "down";
    clock.advance(5_000);
    expect(await request(b, () => call(b, calls, true))).toBe("breaker.open");
    clock.advance(coordination.graceMs!);
    expect(await request(b, () => call(b, calls, true))).toBe("ok");
    expect(b.state("db")).toBe("closed");
  });

  test("a slow coordinator never delays a request, and an abandoned sync is retried", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const logs: string[] = [];
    const a = isolate("a", clock, coordinator, logs);
    const calls = { count: 0 };
    coordinator.mode = "hang";
    const background = new Background();
    // Whether the sync handed to waitUntil has given up yet: a request that waited for it would only answer after.
    let syncSettled = false;
    const waitUntil = (promise: Promise<unknown>) => {
      background.waitUntil(promise);
      promise.then(
        () => (syncSettled = true),
        () => (syncSettled = true),
      );
    };
    a.tick(waitUntil);
    expect(await call(a, calls, true)).toBe("ok");
    a.tick(waitUntil);
    expect(background.pending.length).toBeGreaterThan(0);
    expect(syncSettled).toBe(false);
    expect(logs).toEqual([]); // nor has it been given up on
    await background.settle(); // the sync gives up after syncTimeoutMs (50 ms)
    expect(a.status()[0]?.syncFailures).toBe(1);
    expect(logs[0]).toContain("did not finish within 50 ms");
    coordinator.mode = "up";
    clock.advance(5_000);
    await request(a, () => call(a, calls, true));
    expect(a.status()[0]).toMatchObject({ syncFailures: 0, syncs: 1, shared: { state: "closed" } });
  });

  test("an answer that raced a local trip does not undo it; the trip is reported next", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const a = isolate("a", clock, coordinator);
    const calls = { count: 0 };
    await request(a, () => call(a, calls, true));
    let release!: () => void;
    coordinator.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const sync = a.syncNow(); // answers "closed", slowly
    for (let i = 0; i < 3; i++) await call(a, calls, false);
    release();
    coordinator.gate = undefined;
    await sync;
    expect(a.state("db")).toBe("open");
    await request(a, async () => {});
    expect(coordinator.shared.get("db")?.snapshot().state).toBe("open");
    expect(a.status()[0]).toMatchObject({ held: true, generation: 1 });
  });

  test("an operator's forceClose() wins over the coordinator", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const a = isolate("a", clock, coordinator);
    const b = isolate("b", clock, coordinator);
    const calls = { count: 0 };
    await request(b, () => call(b, calls, true));
    b.for("db").breaker?.forceClose();
    for (let i = 0; i < 3; i++) await request(a, () => call(a, calls, false));
    await b.syncNow();
    expect(b.state("db")).toBe("closed");
    expect(await call(b, calls, true)).toBe("ok");
  });

  test("an evicted instance breaker (webhook:<host>) takes its link along: links stay bounded with the breakers", async () => {
    const clock = new ManualClock();
    const coordinator = new FakeCoordinator(clock);
    const a = new CoordinatedDependencies({
      coordinator,
      isolate: "a",
      clock,
      coordination,
      maxInstanceBreakers: 5,
    });
    for (let i = 0; i < 50; i++) {
      await request(a, () => a.call(`webhook:h${i}.example`, async () => "ok"));
    }
    expect(a.status().map((link) => link.name)).toEqual(
      [45, 46, 47, 48, 49].map((i) => `webhook:h${i}.example`),
    );
    expect(a.snapshots()).toHaveLength(5);
    // Called again, an evicted host gets a fresh breaker and a fresh link, synced like any other.
    await request(a, () => a.call("webhook:h0.example", async () => "ok"));
    expect(a.status().find((link) => link.name === "webhook:h0.example")).toMatchObject({ local: "closed" });
    expect(a.status()).toHaveLength(5);
  });

  test("without a coordinator these are plain per-isolate breakers", async () => {
    const clock = new ManualClock();
    const a = isolate("a", clock, undefined);
    const calls = { count: 0 };
    for (let i = 0; i < 3; i++) await request(a, () => call(a, calls, false));
    expect(a.state("db")).toBe("open");
    expect(a.status()[0]).toMatchObject({ syncs: 0, pendingEvents: 1 });
  });
});

describe("CircuitBreaker.holdOpenUntil", () => {
  test("opens until the given time, then half-opens as after a trip; an operator hold ignores it", async () => {
    const clock = new ManualClock();
    const changes: string[] = [];
    const breaker = new CircuitBreaker({
      name: "db",
      clock,
      resetTimeoutMs: 1_000,
      onStateChange: (change) => changes.push(`${change.to}:${change.reason}`),
    });
    breaker.holdOpenUntil(clock.now() + 10_000);
    expect(breaker.snapshot()).toMatchObject({ state: "open", halfOpensAt: clock.now() + 10_000 });
    clock.advance(1_000);
    expect(breaker.state).toBe("open");
    // Moving the hold while open is no transition.
    breaker.holdOpenUntil(clock.now());
    expect(breaker.state).toBe("half-open");
    expect(await breaker.execute(async () => "probe")).toBe("probe");
    expect(breaker.state).toBe("closed");
    expect(changes).toEqual(["open:coordinated", "half-open:reset-timeout", "closed:probes-succeeded"]);
    breaker.forceClose();
    breaker.holdOpenUntil(clock.now() + 1_000);
    expect(breaker.state).toBe("closed");
  });

  test("a trip after a hold uses resetTimeoutMs again", async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ name: "db", clock, consecutiveFailures: 1, resetTimeoutMs: 1_000 });
    breaker.holdOpenUntil(clock.now());
    await expect(breaker.execute(async () => Promise.reject(new Error("down")))).rejects.toThrow("down");
    expect(breaker.snapshot().halfOpensAt).toBe(clock.now() + 1_000);
  });
});
