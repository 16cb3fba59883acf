// Breaker cases in the closed state: what trips it (rate, minimum calls, streak, slow calls) and what does not.
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { assert, type Case, equal } from "../check.ts";
import { breakerFixture, start, tripByFailures } from "./breaker-fixture.ts";

export const closedCases: Case[] = [
  {
    name: "closed → open when the failure rate reaches the threshold (count window)",
    async run() {
      const f = breakerFixture({ window: { kind: "count", size: 10 }, minimumCalls: 4 });
      await f.succeed();
      await f.succeed();
      await f.fail();
      equal(f.breaker.state, "closed", "after 3 calls (under minimumCalls)");
      await f.fail();
      equal(f.breaker.state, "open", "at 2 failures of 4 calls (50%)");
      equal(f.transitions(), ["closed>open:failure-rate"], "transitions");
      equal(f.changes[0]?.at, start, "transition time");
    },
  },
  {
    name: "a rate under the threshold keeps it closed; the count window slides",
    async run() {
      const f = breakerFixture({
        window: { kind: "count", size: 4 },
        minimumCalls: 4,
        failureRateThreshold: 0.75,
      });
      await f.fail();
      for (let index = 0; index < 3; index++) await f.succeed();
      await f.fail();
      await f.fail();
      // The window is now S S F F: the first failure slid out.
      equal(f.breaker.snapshot().failureRate, 0.5, "failure rate over the last 4");
      equal(f.breaker.state, "closed", "at 50%");
      await f.fail();
      equal(f.breaker.state, "open", "at 3 of the last 4 (75%)");
    },
  },
  {
    name: "no rate trips before minimumCalls, even at 100% failures",
    async run() {
      const f = breakerFixture({ window: { kind: "count", size: 20 }, minimumCalls: 5 });
      await tripByFailures(f, 4);
      equal(f.breaker.state, "closed", "after 4 failures");
      equal(f.breaker.snapshot().failureRate, 1, "failure rate");
      await f.succeed();
      equal(f.breaker.state, "open", "the 5th call makes 4 of 5 (80%)");
    },
  },
  {
    name: "a time window forgets calls older than its span",
    async run() {
      const f = breakerFixture({ window: { kind: "time", ms: 10_000, buckets: 10 }, minimumCalls: 3 });
      await f.fail();
      await f.fail();
      f.clock.advance(11_000);
      equal(f.breaker.snapshot().calls, 0, "calls after the span");
      await f.succeed();
      await f.succeed();
      await f.fail();
      // Counting the two old failures would make 3 of 5 (60%) and trip.
      equal(f.breaker.state, "closed", "1 failure of 3 in the window");
      await f.fail();
      equal(f.breaker.state, "open", "2 of 4 (50%)");
    },
  },
  {
    name: "closed → open after N consecutive failures; a success resets the streak",
    async run() {
      const f = breakerFixture({
        consecutiveFailures: 3,
        minimumCalls: 20,
        window: { kind: "count", size: 20 },
      });
      await f.fail();
      await f.fail();
      await f.succeed();
      await f.fail();
      await f.fail();
      equal(f.breaker.snapshot().consecutiveFailures, 2, "streak after the success");
      equal(f.breaker.state, "closed", "two in a row");
      await f.fail();
      equal(f.transitions(), ["closed>open:consecutive-failures"], "transitions");
    },
  },
  {
    name: "closed → open when the slow-call rate reaches its threshold",
    async run() {
      const f = breakerFixture({ minimumCalls: 4, slowCallDurationMs: 100, slowCallRateThreshold: 0.5 });
      await f.succeed(10);
      await f.succeed(100); // exactly the duration threshold is slow
      await f.succeed(99);
      equal(f.breaker.state, "closed", "3 calls");
      await f.succeed(500);
      equal(f.transitions(), ["closed>open:slow-call-rate"], "transitions");
      equal(f.outcomes(), ["success", "slow", "success", "slow"], "call outcomes");
      equal(
        f.calls.map((event) => event.durationMs),
        [10, 100, 99, 500],
        "durations",
      );
      equal(f.breaker.snapshot().slowRate, 0.5, "slow rate");
    },
  },
  {
    name: "without slowCallDurationMs no call is slow",
    async run() {
      const f = breakerFixture({ minimumCalls: 2 });
      await f.succeed(60_000);
      await f.succeed(60_000);
      equal(f.breaker.state, "closed", "state");
      equal(f.outcomes(), ["success", "success"], "outcomes");
    },
  },
  {
    name: "isFailure: a dependency's 4xx answer counts as a success; a custom predicate decides",
    async run() {
      const f = breakerFixture({
        minimumCalls: 2,
        window: { kind: "count", size: 2 },
        failureRateThreshold: 1,
      });
      const invalid = new EdgewiseError("request.invalid", "bad input");
      await f.fail(invalid);
      await f.fail(invalid);
      equal(f.breaker.state, "closed", "default predicate, two 400s");
      equal(f.outcomes(), ["success", "success"], "recorded as");
      await f.fail(new EdgewiseError("rate_limited", "slow down"));
      await f.fail(new EdgewiseError("timeout", "too slow"));
      equal(f.breaker.state, "open", "429 and 504 count");

      const custom = breakerFixture({
        minimumCalls: 2,
        isFailure: (error) => !(error instanceof RangeError),
      });
      await custom.fail(new RangeError("validation"));
      await custom.fail(new RangeError("validation"));
      equal(custom.breaker.snapshot().failureRate, 0, "custom predicate");
      equal(custom.breaker.state, "closed", "custom predicate state");
    },
  },
  {
    name: "a call that fails after the caller aborted does not count",
    async run() {
      const f = breakerFixture({ minimumCalls: 1, window: { kind: "count", size: 1 } });
      const controller = new AbortController();
      const error = await f.breaker
        .execute(
          async (signal) => {
            controller.abort(new Error("client went away"));
            throw signal.reason;
          },
          { signal: controller.signal },
        )
        .catch((thrown: unknown) => thrown);
      equal((error as Error).message, "client went away", "the caller gets its own reason");
      equal(f.breaker.state, "closed", "state");
      equal(f.breaker.snapshot().calls, 0, "window");
      equal(f.outcomes(), ["ignored"], "outcome");
      let called = false;
      const already = await f.breaker
        .execute(
          async () => {
            called = true;
          },
          { signal: controller.signal },
        )
        .catch((thrown: unknown) => thrown);
      assert(!called && already instanceof Error, "an already-aborted signal is refused before the call");
    },
  },
];
