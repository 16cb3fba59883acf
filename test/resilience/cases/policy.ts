// resilient() cases: the order bulkhead → retry → breaker → timeout, seen from what each layer counts.
import { CircuitBreaker, Bulkhead, type CallEvent, resilient } from "../../../shared/resilience/index.ts";
import { type Case, codeOf, deferred, equal, rejection } from "../check.ts";

const instant = async () => {};

export const policyCases: Case[] = [
  {
    name: "each timed-out attempt is a breaker failure, and retry stops once the breaker opens",
    async run() {
      const breaker = new CircuitBreaker({ name: "redis", consecutiveFailures: 2 });
      const policy = resilient({
        breaker,
        timeoutMs: 10,
        retry: { idempotent: true, attempts: 5, sleep: instant },
      });
      let calls = 0;
      const error = await rejection(
        policy.execute(() => {
          calls += 1;
          return new Promise<never>(() => {});
        }),
        "policy",
      );
      equal(
        [codeOf(error), calls, breaker.state],
        ["breaker.open", 2, "open"],
        "two timeouts, then fail fast",
      );
    },
  },
  {
    name: "a full bulkhead does not count against the breaker",
    async run() {
      const breaker = new CircuitBreaker({ name: "postgres", consecutiveFailures: 1 });
      const policy = resilient({ breaker, bulkhead: new Bulkhead({ name: "postgres", maxConcurrent: 1 }) });
      const gate = deferred();
      const held = policy.execute(() => gate.promise);
      equal(
        codeOf(
          await rejection(
            policy.execute(async () => 1),
            "second",
          ),
        ),
        "bulkhead.full",
        "refused",
      );
      equal(breaker.state, "closed", "breaker");
      gate.resolve();
      await held;
    },
  },
  {
    name: "the caller's abort cancels the attempt, skips retries, and does not count",
    async run() {
      const events: CallEvent[] = [];
      const breaker = new CircuitBreaker({
        name: "remote",
        consecutiveFailures: 1,
        onCall: (e) => events.push(e),
      });
      const policy = resilient({
        breaker,
        timeoutMs: 10_000,
        retry: { idempotent: true, attempts: 3, sleep: instant },
      });
      const controller = new AbortController();
      let attempts = 0;
      let sawAbort = false;
      const pending = policy.execute(
        (signal) =>
          new Promise<never>((_, reject) => {
            attempts += 1;
            signal.addEventListener("abort", () => {
              sawAbort = true;
              reject(signal.reason);
            });
          }),
        controller.signal,
      );
      controller.abort(new Error("client went away"));
      const error = (await rejection(pending, "policy")) as Error;
      equal([error.message, attempts, sawAbort], ["client went away", 1, true], "aborted once");
      equal([breaker.state, events.map((e) => e.outcome)], ["closed", ["ignored"]], "not counted");
    },
  },
  {
    name: "a policy that retries must say the call is idempotent, at construction",
    run() {
      let error: unknown;
      try {
        resilient({ retry: { attempts: 3 } as never });
      } catch (thrown) {
        error = thrown;
      }
      equal(codeOf(error), "config.invalid", "refused");
    },
  },
];
