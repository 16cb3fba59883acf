// The bulkhead: at most N calls at once, a bounded FIFO queue behind them, and `bulkhead.full` (503) past it.
import { EdgewiseError } from "../errors/index.ts";
import { abortReason, neverAborted } from "./abort.ts";

export interface BulkheadOptions {
  /** Names the dependency in snapshots and error meta (never in the public message). */
  name: string;
  /** Calls running at once. */
  maxConcurrent: number;
  /** Callers that may wait for a slot; one more is refused at once. Default 0 (no queue). */
  maxQueue?: number;
}

export interface BulkheadSnapshot {
  name: string;
  active: number;
  queued: number;
  maxConcurrent: number;
  maxQueue: number;
  /** Refused since construction: a counter for /metrics. */
  rejected: number;
}

interface Waiter {
  admit: () => void;
}

export class Bulkhead {
  readonly name: string;
  private readonly maxConcurrent: number;
  private readonly maxQueue: number;
  private active = 0;
  private rejected = 0;
  private readonly queue: Waiter[] = [];

  constructor(options: BulkheadOptions) {
    this.name = options.name;
    this.maxConcurrent = options.maxConcurrent;
    this.maxQueue = options.maxQueue ?? 0;
    if (!Number.isInteger(this.maxConcurrent) || this.maxConcurrent < 1) {
      throw new EdgewiseError(
        "config.invalid",
        `bulkhead ${this.name}: maxConcurrent must be an integer ≥ 1`,
      );
    }
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0) {
      throw new EdgewiseError("config.invalid", `bulkhead ${this.name}: maxQueue must be an integer ≥ 0`);
    }
  }

  /** Runs `fn` once a slot is free. A queued caller whose signal aborts leaves the queue and gets its reason. */
  async execute<T>(
    fn: (signal: AbortSignal) => Promise<T>,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    const signal = options.signal ?? neverAborted();
    signal.throwIfAborted();
    if (this.active < this.maxConcurrent) {
      this.active += 1;
    } else {
      await this.wait(signal);
    }
    try {
      return await fn(signal);
    } finally {
      this.release();
    }
  }

  snapshot(): BulkheadSnapshot {
    return {
      name: this.name,
      active: this.active,
      queued: this.queue.length,
      maxConcurrent: this.maxConcurrent,
      maxQueue: this.maxQueue,
      rejected: this.rejected,
    };
  }

  /** Resolves holding a slot: release() hands it over without freeing it, so no newcomer can jump the queue. */
  private wait(signal: AbortSignal): Promise<void> {
    if (this.queue.length >= this.maxQueue) {
      this.rejected += 1;
      return Promise.reject(
        new EdgewiseError("bulkhead.full", "Too many calls to a dependency are in flight; retry shortly.", {
          meta: { bulkhead: this.name, active: this.active, queued: this.queue.length },
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = this.queue.indexOf(waiter);
        if (index >= 0) this.queue.splice(index, 1);
        reject(abortReason(signal));
      };
      const waiter: Waiter = {
        admit: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      this.queue.push(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next.admit();
    else this.active -= 1;
  }
}
