// The delivery worker: claims due messages, delivers up to N at once, and group-commits the outcomes.
import { Batcher } from "./batcher.ts";
import type { Sql } from "./db.ts";
import { type DeliverContext, deliverOnce } from "./deliver.ts";
import { newDlqId } from "./ingest.ts";
import { claimDue, nextDueAt } from "./store-messages.ts";
import { recordOutcomes } from "./store-outcomes.ts";
import type { MessageRow, Outcome } from "./types.ts";

export interface DispatcherOptions extends DeliverContext {
  concurrency: number;
  pollIntervalMs: number;
  log: (message: string) => void;
}

const CLAIM_BATCH = 256;

/**
 * Wake it on publish and it claims at once; otherwise it sleeps until the earliest due message, or the poll
 * interval, whichever comes first. A message is active from its claim until its outcome is committed, so a
 * crash in between leaves it active, and the next start sends it again.
 */
export class Dispatcher {
  private inFlight = 0;
  private pendingOutcomes = 0;
  private running = false;
  private again = false;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly outcomes: Batcher<Outcome, null>;
  private readonly deliveries = new Set<Promise<void>>();
  delivered = 0;

  constructor(
    private readonly sql: Sql,
    private readonly options: DispatcherOptions,
  ) {
    this.outcomes = new Batcher(async (items) => {
      await this.recordWithRetry(items);
      return items.map(() => null);
    }, 2000);
  }

  start(): void {
    this.wake();
  }

  /** Look for work now (called after publish, and after each committed outcome). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.run();
  }

  /** Stops claiming, then waits (up to `graceMs`) for deliveries under way and their outcomes. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const settled = Promise.all([...this.deliveries]).then(() => this.outcomes.idle());
    let grace: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([settled, new Promise((resolve) => (grace = setTimeout(resolve, graceMs)))]);
    clearTimeout(grace);
  }

  private async run(): Promise<void> {
    this.running = true;
    clearTimeout(this.timer);
    let sleep = this.options.pollIntervalMs;
    let drained = false; // no due work left, as opposed to stopping for want of free slots
    try {
      do {
        this.again = false;
        drained = false;
        while (!this.stopped) {
          const free = this.options.concurrency - this.inFlight;
          // Claim in bulk: with work under way, wait until a quarter of the slots are free.
          if (free <= 0 || (this.inFlight > 0 && free < this.options.concurrency / 4)) break;
          const want = Math.min(free, CLAIM_BATCH);
          const claimed = await claimDue(this.sql, want, Date.now());
          for (const message of claimed) this.launch(message);
          if (claimed.length < want) {
            drained = true;
            break;
          }
        }
      } while (this.again && !this.stopped);
      if (!this.stopped && drained) {
        const due = await nextDueAt(this.sql);
        if (due !== null) sleep = Math.max(2, Math.min(sleep, due - Date.now()));
      }
    } catch (error) {
      if (!this.stopped)
        this.options.log(`dispatcher: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    if (this.again) this.wake();
    else this.timer = setTimeout(() => this.wake(), sleep);
  }

  /**
   * A slot is freed as soon as the destination answered, not when the outcome is committed: the message stays
   * `active` until then (so it is neither claimed again nor lost in a crash), and outcomes commit in batches.
   * Holding the slot through that commit capped delivery at about slots / commit latency. Outcomes still
   * waiting are bounded: past four times the slots, a slot waits for its outcome again.
   */
  private launch(message: MessageRow): void {
    this.inFlight++;
    let slotHeld = true;
    const release = () => {
      if (!slotHeld) return;
      slotHeld = false;
      this.inFlight--;
      this.wake();
    };
    const delivery = (async () => {
      try {
        const outcome = await deliverOnce(message, this.options);
        this.pendingOutcomes++;
        if (this.pendingOutcomes <= this.options.concurrency * 4) release();
        try {
          await this.outcomes.submit([outcome]);
        } finally {
          this.pendingOutcomes--;
          // A committed outcome can unblock work: the next message of a FIFO queue, or a retry now due.
          if (!slotHeld) this.wake();
        }
        if (outcome.kind === "delivered") this.delivered++;
      } catch (error) {
        this.options.log(
          `delivery of ${message.id}: ${error instanceof Error ? error.message : String(error)}`,
        );
      } finally {
        release();
      }
    })();
    this.deliveries.add(delivery);
    void delivery.finally(() => this.deliveries.delete(delivery));
  }

  /** Outcomes must not be lost while the broker runs: a failed commit is retried until it succeeds or stop. */
  private async recordWithRetry(items: Outcome[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await recordOutcomes(this.sql, items, newDlqId);
        return;
      } catch (error) {
        if (this.stopped && attempt > 0) throw error;
        this.options.log(
          `recording outcomes: ${error instanceof Error ? error.message : String(error)}; retrying`,
        );
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }
}
