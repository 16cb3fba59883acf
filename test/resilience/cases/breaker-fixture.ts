// A breaker on a ManualClock that records its events, with one-line calls that succeed, fail or take time.
import { ManualClock } from "../../../shared/clock/index.ts";
import {
  type BreakerOptions,
  type CallEvent,
  CircuitBreaker,
  type StateChange,
} from "../../../shared/resilience/index.ts";

export const start = Date.UTC(2026, 0, 1);

export function breakerFixture(options: Partial<BreakerOptions> = {}) {
  const clock = new ManualClock(start);
  const changes: StateChange[] = [];
  const calls: CallEvent[] = [];
  let invoked = 0;
  const breaker = new CircuitBreaker({
    name: "dependency",
    clock,
    onStateChange: (change) => changes.push(change),
    onCall: (event) => calls.push(event),
    ...options,
  });
  /** A call that succeeds after `ms` of clock time. */
  const succeed = (ms = 0) =>
    breaker.execute(async () => {
      invoked += 1;
      clock.advance(ms);
      return "ok";
    });
  /** A call that fails (after `ms`); resolves with what the breaker threw, its own rejection included. */
  const fail = (error: unknown = new Error("connection refused"), ms = 0): Promise<unknown> =>
    breaker
      .execute(async () => {
        invoked += 1;
        clock.advance(ms);
        throw error;
      })
      .then(
        () => Promise.reject(new Error("a failing call resolved")),
        (thrown: unknown) => thrown,
      );
  return {
    breaker,
    clock,
    changes,
    calls,
    succeed,
    fail,
    invoked: () => invoked,
    /** Transitions as `from>to:reason`, for one-line comparisons. */
    transitions: () => changes.map((change) => `${change.from}>${change.to}:${change.reason}`),
    outcomes: () => calls.map((event) => event.outcome),
  };
}

/** `count` failing calls in a row. */
export async function tripByFailures(
  fixture: ReturnType<typeof breakerFixture>,
  count: number,
): Promise<void> {
  for (let index = 0; index < count; index++) await fixture.fail();
}
