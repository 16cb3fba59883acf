// The breaker's sliding windows: the last N calls, or the calls of the last T ms, as running totals.

export interface CallRecord {
  failure: boolean;
  slow: boolean;
}

export interface WindowTotals {
  calls: number;
  failures: number;
  slow: number;
}

export interface OutcomeWindow {
  record(call: CallRecord, now: number): void;
  totals(now: number): WindowTotals;
  clear(): void;
}

/** `count`: the last `size` calls. `time`: the calls of the last `ms`, kept in `buckets` slices (default 10). */
export type WindowOptions = { kind: "count"; size: number } | { kind: "time"; ms: number; buckets?: number };

export function outcomeWindow(options: WindowOptions): OutcomeWindow {
  return options.kind === "count"
    ? new CountWindow(options.size)
    : new TimeWindow(options.ms, options.buckets ?? 10);
}

const failureBit = 1;
const slowBit = 2;

/** A ring of the last `size` calls; the totals move by one entry per call, whatever the size. */
class CountWindow implements OutcomeWindow {
  private readonly ring: Uint8Array;
  private next = 0;
  private sums: WindowTotals = { calls: 0, failures: 0, slow: 0 };

  constructor(private readonly size: number) {
    this.ring = new Uint8Array(size);
  }

  record(call: CallRecord): void {
    if (this.sums.calls === this.size) {
      const evicted = this.ring[this.next] ?? 0;
      this.sums.failures -= evicted & failureBit ? 1 : 0;
      this.sums.slow -= evicted & slowBit ? 1 : 0;
    } else {
      this.sums.calls += 1;
    }
    this.ring[this.next] = (call.failure ? failureBit : 0) | (call.slow ? slowBit : 0);
    this.sums.failures += call.failure ? 1 : 0;
    this.sums.slow += call.slow ? 1 : 0;
    this.next = (this.next + 1) % this.size;
  }

  totals(): WindowTotals {
    return { ...this.sums };
  }

  clear(): void {
    this.ring.fill(0);
    this.next = 0;
    this.sums = { calls: 0, failures: 0, slow: 0 };
  }
}

interface Bucket extends WindowTotals {
  start: number;
}

/** Time slices of `ms / buckets`; a slice leaves once it lies wholly before `now - ms`. */
class TimeWindow implements OutcomeWindow {
  private buckets: Bucket[] = [];
  private readonly bucketMs: number;

  constructor(
    private readonly ms: number,
    buckets: number,
  ) {
    this.bucketMs = Math.max(1, Math.ceil(ms / buckets));
  }

  record(call: CallRecord, now: number): void {
    this.evict(now);
    const start = now - (now % this.bucketMs);
    let bucket = this.buckets.at(-1);
    if (!bucket || bucket.start !== start) {
      bucket = { start, calls: 0, failures: 0, slow: 0 };
      this.buckets.push(bucket);
    }
    bucket.calls += 1;
    bucket.failures += call.failure ? 1 : 0;
    bucket.slow += call.slow ? 1 : 0;
  }

  totals(now: number): WindowTotals {
    this.evict(now);
    const sums = { calls: 0, failures: 0, slow: 0 };
    for (const bucket of this.buckets) {
      sums.calls += bucket.calls;
      sums.failures += bucket.failures;
      sums.slow += bucket.slow;
    }
    return sums;
  }

  clear(): void {
    this.buckets = [];
  }

  private evict(now: number): void {
    const horizon = now - this.ms;
    while (this.buckets.length > 0 && (this.buckets[0] as Bucket).start + this.bucketMs <= horizon) {
      this.buckets.shift();
    }
  }
}
