// An in-memory transport for tests only: records what the relay sent, and can be told to fail.
import type { Envelope } from "../../shared/envelope/index.ts";
import type { Transport } from "../../actors/runtime/index.ts";

export class RecordingTransport implements Transport {
  readonly sent: Envelope[] = [];
  failing = false;
  attempts = 0;
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  async send(envelopes: Envelope[]): Promise<void> {
    this.attempts++;
    if (this.failing) throw new Error("transport down (test)");
    this.sent.push(...envelopes);
    this.waiters = this.waiters.filter((waiter) => {
      if (this.sent.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Resolves once at least `count` messages were sent. */
  waitFor(count: number, timeoutMs = 5_000): Promise<void> {
    if (this.sent.length >= count) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.sent.length}/${count} sent`)), timeoutMs);
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}
