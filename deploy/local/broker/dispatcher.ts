// The delivery worker: claims due messages, delivers up to N at once, and group-commits the outcomes.
import { Batcher } from "./batcher.ts";
import { recoverOrphans, type Sql } from "./db.ts";
import { type DeliverContext, deliverOnce } from "./deliver.ts";
import { newDlqId } from "./ingest.ts";
import { claimDue, nextDueAt } from "./store-messages.ts";
import { recordOutcomes } from "./store-outcomes.ts";
import type { MessageRow, Outcome } from "./types.ts";

export interface DispatcherOptions extends DeliverContext {
  concurrency: number;
  pollIntervalMs: number;
  log: (message: string) => void;
  /** Called after each group of outcomes commits, with its size. */
  recorded?: (count: number) => void;
}

const CLAIM_BATCH = 256;
const OUTCOME_LINGER_MS = 5;
/** After a failed claim, the next try comes this soon (or at the poll, if that is sooner). */
const RETRY_AFTER_ERROR_MS = 1000;

/**
 * Claims due messages and delivers them, up to `concurrency` at once. A message is active from its claim until
 * its outcome is committed, so a crash in between leaves it active, and the next start sends it again.
 *
 * It claims only when due messages may be waiting in the table (`backlog`): after start, after `wake()`
 * (anything that may make messages due: a publish it could not start at once, a queue resumed, a DLQ retry),
 * once a known due time has come (a delay, a retry), and at least every `pollIntervalMs` as a fallback. A
 * claim that finds fewer than it asked for clears it. Publish starts what it can itself: while there is no
 * backlog, it stores due messages as active in its own statement (`reserve`, `adopt`), so that they need no
 * claim, which is the common case below full load.
 *
 * A statement that makes messages active (a claim, or a publish that starts its messages) may commit without
 * the broker hearing so, when the connection breaks before the reply arrives. Its messages would then stay
 * active with nobody delivering them until the next start. So after such a failure, the next run first puts
 * back to pending every active message made active up to then that this broker does not hold (`held`:
 * deliveries under way, publishes' starts in flight, outcomes not yet committed).
 */
export class Dispatcher {
  private inFlight = 0;
  private pendingOutcomes = 0;
  private running = false;
  private again = false;
  private stopped = false;
  /** Slots granted to publishes still under way (`reserve`), until `adopt` or `abandon`. */
  private reservedSlots = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  /** Due messages may be waiting in the table. */
  private backlog = true;
  /** Bumped by every `wake()`: a claim that found nothing clears `backlog` only if nothing woke it meanwhile. */
  private wakes = 0;
  /** The earliest time a waiting message is known to fall due (a delay, a retry, a queue head). */
  private dueFrom = Number.POSITIVE_INFINITY;
  private lastClaimAt = 0;
  /** Messages this broker made active and has not settled yet, with how many holds each has. */
  private readonly held = new Map<string, number>();
  /** A statement that makes messages active failed at this time: orphans made active up to it may exist. */
  private orphansUpTo: number | undefined;
  /** Bumped by every such failure, so that a recovery clears only what it covered. */
  private suspicions = 0;
  private readonly outcomes: Batcher<Outcome, null>;
  private readonly deliveries = new Set<Promise<void>>();
  delivered = 0;

  constructor(
    private readonly sql: Sql,
    private readonly options: DispatcherOptions,
  ) {
    // Outcomes linger a little for company: below full load they would otherwise commit one by one, and
    // nothing waits for them but the message's row (its slot is free once the destination answered). A FIFO
    // queue's next message waits for it, though: those do not linger.
    this.outcomes = new Batcher(
      async (items) => {
        await this.recordWithRetry(items);
        return items.map(() => null);
      },
      2000,
      () => 0,
      Number.POSITIVE_INFINITY,
      OUTCOME_LINGER_MS,
    );
  }

  start(): void {
    this.wake();
  }

  /** Messages may have become due: claim now. */
  wake(): void {
    this.backlog = true;
    this.wakes++;
    this.poke();
  }

  /** A message stored meanwhile falls due at `at` (ms since epoch). */
  dueAt(at: number): void {
    if (at >= this.dueFrom) return;
    this.dueFrom = at;
    // Already due (a retry whose outcome took longer to commit than its backoff, or `Retry-After: 0`): claim
    // now. `arm()` would only set the poll fallback for a past due time, and the retry would wait for it.
    if (at <= Date.now()) this.poke();
    else this.arm();
  }

  /**
   * Slots for due messages that publish stores as active at once (see `adopt`): the ids granted, held until
   * `adopt` or `abandon`. None while due messages may be waiting in the table, so that nothing overtakes them.
   */
  reserve(ids: readonly string[]): ReadonlySet<string> {
    if (this.stopped || this.backlog || Date.now() >= this.dueFrom) return new Set();
    const granted = new Set(ids.slice(0, Math.max(0, this.options.concurrency - this.inFlight)));
    this.inFlight += granted.size;
    this.reservedSlots += granted.size;
    for (const id of granted) this.hold(id);
    return granted;
  }

  /** Delivers the messages publish stored as active, and gives back the slots reserved for the others. */
  adopt(granted: ReadonlySet<string>, started: MessageRow[]): void {
    this.inFlight -= granted.size;
    this.reservedSlots -= granted.size;
    for (const message of started) this.launch(message);
    for (const id of granted) this.unhold(id);
    if (started.length < granted.size) this.poke();
  }

  /** The publish's statement failed: it may have committed, and stored the granted messages as active. */
  abandon(granted: ReadonlySet<string>): void {
    this.inFlight -= granted.size;
    this.reservedSlots -= granted.size;
    if (granted.size === 0) return;
    for (const id of granted) this.unhold(id);
    this.suspectOrphans();
    this.poke();
  }

  /** Stops claiming, then waits (up to `graceMs`) for deliveries under way and their outcomes. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const deadline = Date.now() + graceMs;
    // A publish granted slots before the stop delivers its messages when its statement returns (`adopt`): wait
    // for it, so that its deliveries are among those waited for, not started after the stop returned.
    while (this.reservedSlots > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5));
    const settled = Promise.all([...this.deliveries]).then(() => this.outcomes.idle());
    let grace: ReturnType<typeof setTimeout> | undefined;
    const left = Math.max(0, deadline - Date.now());
    await Promise.race([settled, new Promise((resolve) => (grace = setTimeout(resolve, left)))]);
    clearTimeout(grace);
  }

  /** Run the claim loop if there may be something to claim and room for it. */
  private poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.run();
  }

  private mayHaveWork(now: number): boolean {
    return this.backlog || now >= this.dueFrom || now - this.lastClaimAt >= this.options.pollIntervalMs;
  }

  private async run(): Promise<void> {
    this.running = true;
    let drained = false; // a claim found no more due work, as opposed to stopping for want of free slots
    try {
      do {
        this.again = false;
        while (!this.stopped) {
          if (this.orphansUpTo !== undefined) await this.recoverOrphans();
          const now = Date.now();
          if (!this.mayHaveWork(now)) break;
          const free = this.options.concurrency - this.inFlight;
          // Claim in bulk: with work under way, wait until a quarter of the slots are free.
          if (free <= 0 || (this.inFlight > 0 && free < this.options.concurrency / 4)) break;
          const want = Math.min(free, CLAIM_BATCH);
          // A due time come, or the fallback: until a claim finds less than it asked for, assume a backlog.
          if (now >= this.dueFrom) this.dueFrom = Number.POSITIVE_INFINITY;
          this.backlog = true;
          const wakes = this.wakes;
          this.lastClaimAt = now;
          let claimed: MessageRow[];
          try {
            claimed = await claimDue(this.sql, want, now);
          } catch (error) {
            this.suspectOrphans();
            throw error;
          }
          for (const message of claimed) this.launch(message);
          if (claimed.length < want) {
            if (this.wakes === wakes) this.backlog = false;
            drained = true;
            break;
          }
        }
      } while (this.again && !this.stopped);
      if (!this.stopped && drained) {
        const due = await nextDueAt(this.sql);
        if (due !== null && due < this.dueFrom) this.dueFrom = due;
      }
    } catch (error) {
      if (!this.stopped)
        this.options.log(`dispatcher: ${error instanceof Error ? error.message : String(error)}`);
      // Try again soon rather than at the poll: the database may be back in a moment.
      this.dueFrom = Math.min(
        this.dueFrom,
        Date.now() + Math.min(RETRY_AFTER_ERROR_MS, this.options.pollIntervalMs),
      );
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    if (this.again) this.poke();
    else this.arm();
  }

  /**
   * Sets the timer for the next known due time, or the poll fallback, whichever comes first. A due time already
   * past means the last run had no free slot for it: a slot freed pokes the loop then.
   */
  private arm(): void {
    if (this.stopped) return;
    const now = Date.now();
    const poll = now + this.options.pollIntervalMs;
    const at = Math.max(now + 2, this.dueFrom > now ? Math.min(this.dueFrom, poll) : poll);
    if (this.timer !== undefined && at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.poke();
    }, at - now);
  }

  /**
   * A slot is freed as soon as the destination answered, not when the outcome is committed: the message stays
   * `active` until then (so it is neither claimed again nor lost in a crash), and outcomes commit in batches.
   * Holding the slot through that commit capped delivery at about slots / commit latency. Outcomes still
   * waiting are bounded: past four times the slots, a slot waits for its outcome again.
   */
  private launch(message: MessageRow): void {
    this.inFlight++;
    this.hold(message.id);
    let slotHeld = true;
    const release = () => {
      if (!slotHeld) return;
      slotHeld = false;
      this.inFlight--;
      this.poke();
    };
    const delivery = (async () => {
      try {
        const outcome = await deliverOnce(message, this.options);
        this.pendingOutcomes++;
        if (this.pendingOutcomes <= this.options.concurrency * 4) release();
        try {
          await this.outcomes.submit([outcome], message.queue_name !== null);
        } finally {
          this.pendingOutcomes--;
        }
        // A committed outcome can make work due: the next message of a FIFO queue, or a retry.
        if (outcome.kind === "retry") this.dueAt(outcome.dueAt);
        if (message.queue_name !== null) this.wake();
        if (outcome.kind === "delivered") this.delivered++;
      } catch (error) {
        this.options.log(
          `delivery of ${message.id}: ${error instanceof Error ? error.message : String(error)}`,
        );
      } finally {
        release();
        this.unhold(message.id);
      }
    })();
    this.deliveries.add(delivery);
    void delivery.finally(() => this.deliveries.delete(delivery));
  }

  private hold(id: string): void {
    this.held.set(id, (this.held.get(id) ?? 0) + 1);
  }

  private unhold(id: string): void {
    const holds = (this.held.get(id) ?? 0) - 1;
    if (holds > 0) this.held.set(id, holds);
    else this.held.delete(id);
  }

  private suspectOrphans(): void {
    this.orphansUpTo = Date.now();
    this.suspicions++;
  }

  /** Puts orphans back to pending (see the class comment); throws, and stays due, while the database fails. */
  private async recoverOrphans(): Promise<void> {
    const suspicions = this.suspicions;
    const recovered = await recoverOrphans(this.sql, this.orphansUpTo as number, [...this.held.keys()]);
    if (this.suspicions === suspicions) this.orphansUpTo = undefined;
    if (recovered > 0) {
      this.backlog = true;
      this.options.log(
        `recovered ${recovered} message(s) left active by a lost reply; they will be delivered`,
      );
    }
  }

  /** Outcomes must not be lost while the broker runs: a failed commit is retried until it succeeds or stop. */
  private async recordWithRetry(items: Outcome[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await recordOutcomes(this.sql, items, newDlqId);
        this.options.recorded?.(items.length);
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
