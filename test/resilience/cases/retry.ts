// retry cases: backoff bounds and jitter with a fixed random, idempotency required, what is never retried.
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { backoffDelay, type RetryOptions, retry } from "../../../shared/resilience/index.ts";
import { type Case, codeOf, equal, rejection } from "../check.ts";

/** An instant sleep that records the delays it was asked for. */
function recordingSleep() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

/** A dependency that fails `failures` times with `error`, then answers "ok". */
function flaky(failures: number, error: unknown = new Error("reset by peer")) {
  const state = { calls: 0 };
  const fn = async () => {
    state.calls += 1;
    if (state.calls <= failures) throw error;
    return "ok";
  };
  return { state, fn };
}

export const retryCases: Case[] = [
  {
    name: "backoff: full jitter in [0, ceiling), equal jitter in [ceiling/2, ceiling), both capped at maxMs",
    run() {
      const options = { baseMs: 100, maxMs: 1_000 };
      const low = () => 0;
      const high = () => 0.999_999;
      equal(
        [1, 2, 3, 4, 5, 10].map((retry) => backoffDelay(retry, { ...options, jitter: "full" }, high)),
        [99, 199, 399, 799, 999, 999],
        "full, high",
      );
      equal(backoffDelay(3, { ...options, jitter: "full" }, low), 0, "full, low");
      equal(
        [1, 2, 3, 4, 5, 10].map((retry) => backoffDelay(retry, { ...options, jitter: "equal" }, low)),
        [50, 100, 200, 400, 500, 500],
        "equal, low",
      );
      equal(backoffDelay(10, { ...options, jitter: "equal" }, high), 999, "equal, high, capped");
      for (let sample = 0; sample < 200; sample++) {
        const delay = backoffDelay(4, { ...options, jitter: "equal" });
        if (delay < 400 || delay >= 800) throw new Error(`equal jitter out of bounds: ${delay}`);
      }
    },
  },
  {
    name: "retries with growing jittered delays, then returns the answer",
    async run() {
      const { delays, sleep } = recordingSleep();
      const dependency = flaky(3);
      const value = await retry(dependency.fn, {
        idempotent: true,
        attempts: 4,
        baseMs: 100,
        maxMs: 250,
        jitter: "equal",
        random: () => 0.5,
        sleep,
      });
      equal([value, dependency.state.calls], ["ok", 4], "answer and calls");
      equal(delays, [75, 150, 187], "delays: ceilings 100, 200, 250 (capped), equal jitter at 0.5");
    },
  },
  {
    name: "gives up after `attempts` with the last error",
    async run() {
      const { delays, sleep } = recordingSleep();
      const dependency = flaky(10);
      const error = await rejection(retry(dependency.fn, { idempotent: true, attempts: 3, sleep }), "retry");
      equal(
        [(error as Error).message, dependency.state.calls, delays.length],
        ["reset by peer", 3, 2],
        "result",
      );
    },
  },
  {
    name: "refuses a call not declared idempotent, without calling it",
    async run() {
      const dependency = flaky(0);
      const options = { idempotent: false } as unknown as RetryOptions;
      const error = await rejection(retry(dependency.fn, options), "retry");
      equal([codeOf(error), dependency.state.calls], ["config.invalid", 0], "refused");
    },
  },
  {
    name: "never retries an open breaker, a 4xx by default, or what retryOn refuses",
    async run() {
      const open = new EdgewiseError("breaker.open", "open", { meta: { retryAfterMs: 10 } });
      const cases: Array<[unknown, Partial<RetryOptions>]> = [
        [open, { retryOn: () => true }],
        [new EdgewiseError("request.invalid", "bad"), {}],
        [new EdgewiseError("bulkhead.full", "full"), {}],
        [new Error("fatal"), { retryOn: (error) => (error as Error).message !== "fatal" }],
      ];
      for (const [thrown, options] of cases) {
        const dependency = flaky(5, thrown);
        const { sleep } = recordingSleep();
        const error = await rejection(retry(dependency.fn, { idempotent: true, sleep, ...options }), "retry");
        equal([error === thrown, dependency.state.calls], [true, 1], `one call for ${String(thrown)}`);
      }
      const retried = flaky(1, new EdgewiseError("timeout", "slow"));
      await retry(retried.fn, { idempotent: true, sleep: recordingSleep().sleep });
      equal(retried.state.calls, 2, "a timeout (504) is retried");
    },
  },
  {
    name: "the caller's abort cuts a backoff sleep short and ends the loop",
    async run() {
      const controller = new AbortController();
      const dependency = flaky(10);
      const started = Date.now();
      // Equal jitter: the sleep is at least half the 5 s cap. With full jitter it could draw under the 10 ms
      // before the abort (one run in a few hundred), and the second call came first.
      const pending = retry(dependency.fn, {
        idempotent: true,
        baseMs: 10_000,
        jitter: "equal",
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(new Error("client went away")), 10);
      const error = (await rejection(pending, "retry")) as Error;
      equal([error.message, dependency.state.calls], ["client went away", 1], "stopped");
      if (Date.now() - started > 5_000) throw new Error("the backoff sleep was not cut short");
    },
  },
];
