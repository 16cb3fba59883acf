// Breaker cases from open onwards: fail fast, lazy half-open, probes, events, snapshot, operator overrides.
import { type EdgewiseError, toProblem } from "../../../shared/errors/index.ts";
import { type BreakerOptions, CircuitBreaker } from "../../../shared/resilience/index.ts";
import { assert, type Case, codeOf, deferred, equal } from "../check.ts";
import { breakerFixture, start } from "./breaker-fixture.ts";

/** A breaker that one failure trips, open for 1 s. */
async function tripped(options: Partial<BreakerOptions> = {}) {
  const f = breakerFixture({ consecutiveFailures: 1, resetTimeoutMs: 1_000, ...options });
  await f.fail();
  equal(f.breaker.state, "open", "tripped");
  return f;
}

export const recoveryCases: Case[] = [
  {
    name: "open fails fast with breaker.open (503, public, Retry-After meta) without calling the dependency",
    async run() {
      const f = await tripped({ name: "postgres-ledger" });
      f.clock.advance(400);
      const before = f.invoked();
      const error = (await f.fail()) as EdgewiseError;
      equal(f.invoked(), before, "dependency calls");
      equal([codeOf(error), error.status, error.public], ["breaker.open", 503, true], "code, status, public");
      equal(
        error.meta,
        {
          breaker: "postgres-ledger",
          state: "open",
          retryAfterMs: 600,
          retryAfterSeconds: 1,
          halfOpensAt: start + 1_000,
        },
        "meta",
      );
      assert(!toProblem(error).detail.includes("postgres"), "the public detail names no dependency");
      equal(f.outcomes().at(-1), "rejected", "last call outcome");
      equal(f.breaker.snapshot().totals.rejected, 1, "rejected total");
    },
  },
  {
    name: "open → half-open lazily, at the first look once resetTimeoutMs has passed",
    async run() {
      const f = await tripped();
      f.clock.advance(999);
      equal(f.breaker.state, "open", "1 ms before");
      f.clock.advance(1);
      equal(f.changes.length, 1, "nothing happens until someone looks");
      equal(f.breaker.state, "half-open", "at the reset time");
      equal(
        f.transitions(),
        ["closed>open:consecutive-failures", "open>half-open:reset-timeout"],
        "transitions",
      );
      equal(f.changes[1]?.at, start + 1_000, "transition time");
    },
  },
  {
    name: "half-open lets halfOpenProbes calls through; the others fail fast",
    async run() {
      const f = await tripped({ halfOpenProbes: 2 });
      f.clock.advance(1_000);
      const [first, second] = [deferred<string>(), deferred<string>()];
      const probe1 = f.breaker.execute(() => first.promise);
      const probe2 = f.breaker.execute(() => second.promise);
      const before = f.invoked();
      const third = (await f.fail()) as EdgewiseError;
      equal(f.invoked(), before, "the third call never ran");
      equal(
        [codeOf(third), third.meta?.state, third.meta?.retryAfterMs],
        ["breaker.open", "half-open", 1_000],
        "rejection",
      );
      first.resolve("a");
      await probe1;
      equal(f.breaker.state, "half-open", "after one probe success of two");
      second.resolve("b");
      await probe2;
      equal(f.breaker.state, "closed", "after both");
      equal(f.transitions().at(-1), "half-open>closed:probes-succeeded", "last transition");
    },
  },
  {
    name: "half-open → closed after halfOpenProbes successes, with an empty window",
    async run() {
      const f = await tripped({ halfOpenProbes: 3 });
      f.clock.advance(1_000);
      await f.succeed();
      await f.succeed();
      equal(f.breaker.state, "half-open", "after 2 of 3");
      await f.succeed();
      equal(f.breaker.state, "closed", "after 3 of 3");
      const snapshot = f.breaker.snapshot();
      equal(
        [snapshot.calls, snapshot.consecutiveFailures, snapshot.openedAt],
        [0, 0, undefined],
        "fresh window",
      );
    },
  },
  {
    name: "half-open → open on a probe failure, for another full reset time",
    async run() {
      const f = await tripped({ halfOpenProbes: 2 });
      f.clock.advance(1_000);
      await f.succeed();
      await f.fail();
      equal(f.transitions().at(-1), "half-open>open:probe-failed", "transition");
      const snapshot = f.breaker.snapshot();
      equal([snapshot.openedAt, snapshot.halfOpensAt], [start + 1_000, start + 2_000], "reopened at");
      equal(codeOf(await f.fail()), "breaker.open", "fails fast again");
    },
  },
  {
    name: "a slow probe reopens the breaker",
    async run() {
      const f = await tripped({ slowCallDurationMs: 100 });
      f.clock.advance(1_000);
      await f.succeed(150);
      equal(f.transitions().at(-1), "half-open>open:probe-failed", "transition");
    },
  },
  {
    name: "a probe aborted by its caller gives its slot back",
    async run() {
      const f = await tripped();
      f.clock.advance(1_000);
      const controller = new AbortController();
      await f.breaker
        .execute(
          async () => {
            controller.abort();
            throw new Error("aborted");
          },
          { signal: controller.signal },
        )
        .catch(() => undefined);
      equal(f.breaker.state, "half-open", "still half-open");
      await f.succeed();
      equal(f.breaker.state, "closed", "the next probe got through and closed it");
    },
  },
  {
    name: "a call admitted before a transition does not count in the next state",
    async run() {
      const f = breakerFixture({ consecutiveFailures: 1, resetTimeoutMs: 1_000 });
      const late = deferred<string>();
      const slowCall = f.breaker.execute(() => late.promise).catch(() => undefined);
      await f.fail();
      f.clock.advance(1_000);
      equal(f.breaker.state, "half-open", "half-open");
      late.reject(new Error("late failure"));
      await slowCall;
      equal(f.breaker.state, "half-open", "the late failure did not reopen it");
      await f.succeed();
      equal(f.breaker.state, "closed", "the real probe closed it");
    },
  },
  {
    name: "every transition emits one event with name, from, to, reason and time",
    async run() {
      const f = await tripped();
      f.clock.advance(1_000);
      await f.fail();
      f.clock.advance(1_000);
      await f.succeed();
      equal(
        f.changes,
        [
          { name: "dependency", from: "closed", to: "open", reason: "consecutive-failures", at: start },
          { name: "dependency", from: "open", to: "half-open", reason: "reset-timeout", at: start + 1_000 },
          { name: "dependency", from: "half-open", to: "open", reason: "probe-failed", at: start + 1_000 },
          { name: "dependency", from: "open", to: "half-open", reason: "reset-timeout", at: start + 2_000 },
          {
            name: "dependency",
            from: "half-open",
            to: "closed",
            reason: "probes-succeeded",
            at: start + 2_000,
          },
        ],
        "events",
      );
      equal(f.outcomes(), ["failure", "failure", "success"], "call events");
      equal(
        f.calls.map((event) => event.state),
        ["closed", "half-open", "half-open"],
        "admitting states",
      );
    },
  },
  {
    name: "snapshot() reports state, rates, counts and times for /readyz and /metrics",
    async run() {
      const f = breakerFixture({ minimumCalls: 4, slowCallDurationMs: 100, resetTimeoutMs: 5_000 });
      await f.succeed();
      await f.succeed(200);
      await f.fail();
      equal(
        f.breaker.snapshot(),
        {
          name: "dependency",
          state: "closed",
          failureRate: 1 / 3,
          slowRate: 1 / 3,
          calls: 3,
          consecutiveFailures: 1,
          totals: { success: 1, failure: 1, slow: 1, rejected: 0, ignored: 0 },
        },
        "closed",
      );
      await f.fail();
      await f.fail();
      const open = f.breaker.snapshot();
      equal(
        [open.state, open.failureRate, open.calls, open.openedAt, open.halfOpensAt],
        ["open", 0.5, 4, start + 200, start + 5_200],
        "open (the window that tripped it stays visible)",
      );
    },
  },
  {
    name: "forceOpen() holds it open past the reset time; forceClose() holds it closed; reset() clears",
    async run() {
      const f = breakerFixture({ consecutiveFailures: 1, resetTimeoutMs: 1_000 });
      f.breaker.forceOpen();
      f.clock.advance(60_000);
      equal([f.breaker.state, f.breaker.snapshot().forced], ["open", "open"], "held open");
      equal(f.breaker.snapshot().halfOpensAt, undefined, "no half-open time");
      equal(((await f.fail()) as EdgewiseError).meta?.retryAfterMs, 1_000, "suggests the reset time");
      f.breaker.forceClose();
      await f.fail();
      await f.fail();
      equal([f.breaker.state, f.breaker.snapshot().consecutiveFailures], ["closed", 2], "held closed");
      f.breaker.reset();
      equal(f.breaker.snapshot().forced, undefined, "no hold");
      equal(f.breaker.snapshot().consecutiveFailures, 0, "cleared");
      await f.fail();
      equal(f.breaker.state, "open", "trips again");
      equal(
        f.transitions(),
        ["closed>open:forced-open", "open>closed:forced-closed", "closed>open:consecutive-failures"],
        "transitions (reset() from closed is not one)",
      );
    },
  },
  {
    name: "a throwing hook changes nothing",
    async run() {
      const f = breakerFixture({
        consecutiveFailures: 1,
        onStateChange: () => {
          throw new Error("metrics down");
        },
        onCall: () => {
          throw new Error("metrics down");
        },
      });
      await f.fail();
      equal(f.breaker.state, "open", "tripped");
      equal(codeOf(await f.fail()), "breaker.open", "rejects with its own error");
    },
  },
  {
    name: "reopensInMs(): none while closed, the time to half-open while open, 0 or a probe's time while half-open",
    async run() {
      const f = breakerFixture({ consecutiveFailures: 1, resetTimeoutMs: 1_000 });
      equal(f.breaker.reopensInMs(), undefined, "closed");
      await f.fail();
      f.clock.advance(300);
      equal(f.breaker.reopensInMs(), 700, "open");
      f.clock.advance(700);
      equal(f.breaker.reopensInMs(), 0, "half-open, its probe not yet taken");
      const probe = deferred<string>();
      const running = f.breaker.execute(() => probe.promise);
      equal(f.breaker.reopensInMs(), 1_000, "half-open, its probe in flight");
      probe.resolve("ok");
      await running;
      equal(f.breaker.reopensInMs(), undefined, "closed again");
      f.breaker.forceOpen();
      equal(f.breaker.reopensInMs(), undefined, "held open by an operator: no time is known");
    },
  },
  {
    name: "invalid options fail at construction with config.invalid",
    run() {
      const invalid: Array<Partial<BreakerOptions>> = [
        { failureRateThreshold: 0 },
        { slowCallRateThreshold: 1.5 },
        { window: { kind: "count", size: 5 }, minimumCalls: 6 },
        { halfOpenProbes: 0 },
        { resetTimeoutMs: -1 },
        { window: { kind: "time", ms: 0 } },
      ];
      for (const options of invalid) {
        let error: unknown;
        try {
          new CircuitBreaker({ name: "bad", ...options });
        } catch (thrown) {
          error = thrown;
        }
        equal(codeOf(error), "config.invalid", JSON.stringify(options));
      }
    },
  },
];
