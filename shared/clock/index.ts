// The clock port: every time read in the runtime goes through it, so tests can control time.

/**
 * Two readings, because the machine's wall clock steps: NTP corrects it, a VM resumed from suspend jumps it ahead,
 * an operator sets a wrong one right, backward as often as forward.
 */
export interface Clock {
  /**
   * Wall time, milliseconds since the Unix epoch. For what is stored or compared with another process or machine:
   * an event's time, a JWT's `exp`, a webhook's timestamp, a durable timer's due time.
   */
  now(): number;
  /**
   * Elapsed time, milliseconds from an arbitrary origin, which no step of the wall clock moves. For what is measured
   * and kept in this process: a breaker's open window, a backoff, a cache entry's age, a throttle's interval.
   */
  monotonic(): number;
}

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  private elapsed = 0;
  constructor(private current = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.current;
  }
  monotonic(): number {
    return this.elapsed;
  }
  /** Time passes: both readings move on. */
  advance(ms: number): void {
    this.current += ms;
    this.elapsed += ms;
  }
  /** The wall clock steps by `ms` (negative: back), as NTP or an operator steps it; no time passes. */
  step(ms: number): void {
    this.current += ms;
  }
  /** The wall clock is set to `epochMs`: a step, no time passes. */
  set(epochMs: number): void {
    this.current = epochMs;
  }
}

/**
 * Whether work throttled to once per `everyMs` of wall time is due at `now`, its last run at `last` (undefined:
 * never). Wall time, since such work compares cutoffs with stored times; a `now` before `last` means the wall clock
 * was stepped back, and counts as due, or the work would stop for as long as the step.
 */
export function dueAfter(now: number, last: number | undefined, everyMs: number): boolean {
  return last === undefined || now < last || now - last >= everyMs;
}
