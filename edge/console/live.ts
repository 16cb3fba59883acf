// The console's live event stream: one tail of the activity log, read every `intervalMs` for all open streams.
//
// The tail keeps a cursor (every entry at or before it has been seen) and the latest entries in a buffer. Each
// stream has a position (the last entry handed to it) and takes from the buffer what comes after; a stream that
// resumes from before the buffer (Last-Event-ID of an old entry) reads its own way forward to the cursor, one batch
// a tick, then follows the buffer like the rest. So an idle console costs nothing, and any number of open streams
// cost one query per interval.
//
// Positions are the log's sequence, taken when an insert starts, not when it commits: a later entry can become
// visible before an earlier one, and a position can stay empty for good (a duplicate insert, a rollback). The tail
// never moves its cursor past a hole until the hole has been there `settleMs`, so a late commit is not skipped.
// That holds from its start too: the tail starts below the newest recent hole, and the streams that start at the
// end then skip the entries that were already there.
import { type Clock, systemClock } from "../../shared/clock/index.ts";
import type { ConsoleEventLog, ConsoleLogEntry, LiveOptions } from "./types.ts";

const maxPosition = 9_223_372_036_854_775_807n;

/** How far below the newest entry the tail looks, when it starts, for a position whose insert may yet commit. */
const recentPositions = 64;

/** A log position as a client may send it back (Last-Event-ID, `?after=`): a bigint's decimal digits. */
export function isPosition(value: string): boolean {
  return /^(0|[1-9][0-9]{0,18})$/.test(value) && BigInt(value) <= maxPosition;
}

/** What a stream waits for: entries to send, an idle interval (time for a heartbeat), or the end. */
export type LiveNext = { entries: ConsoleLogEntry[] } | { idle: true } | { closed: true };

export interface LiveSubscription {
  /** The entries after the last ones it returned; `idle` if none came within `waitMs`; `closed` at the end. */
  next(waitMs: number): Promise<LiveNext>;
  /** Leaves the tail (the client went away); idempotent. */
  close(): void;
}

interface Positioned {
  at: bigint;
  entry: ConsoleLogEntry;
}

class Subscriber implements LiveSubscription {
  /** The last position queued for this stream. */
  position: bigint;
  /**
   * For a stream that started at the end of the log while the tail's cursor was below a recent hole: the entries
   * that were already there when the tail started, which the stream does not send (it starts after them).
   */
  skip: ReadonlySet<bigint> | undefined;
  queue: ConsoleLogEntry[] = [];
  closed = false;
  private waiter: ((next: LiveNext) => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    position: bigint,
    private readonly leave: (subscriber: Subscriber) => void,
  ) {
    this.position = position;
  }

  next(waitMs: number): Promise<LiveNext> {
    if (this.closed) return Promise.resolve({ closed: true });
    if (this.queue.length > 0) return Promise.resolve({ entries: this.queue.splice(0) });
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.timer = setTimeout(() => this.wake({ idle: true }), waitMs);
    });
  }

  /** Hands queued entries to a waiting stream. */
  flush(): void {
    if (this.waiter && this.queue.length > 0) this.wake({ entries: this.queue.splice(0) });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.leave(this);
    this.wake({ closed: true });
  }

  private wake(next: LiveNext): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(next);
  }
}

export class LiveTail {
  private readonly subscribers = new Set<Subscriber>();
  private readonly intervalMs: number;
  private readonly settleMs: number;
  private readonly clock: Clock;
  /** Entries read per query. */
  private readonly batch = 200;
  /** How many settled entries the buffer keeps for streams a little behind. */
  private readonly bufferSize = 1_000;
  /** A stream this many entries behind on its writes is dropped; its EventSource reconnects and resumes. */
  private readonly maxQueue = 2_000;
  /** Every entry at or before it has been seen; undefined while no stream is open (the next one starts afresh). */
  private cursor: bigint | undefined;
  /** The buffer holds every settled entry after this position. */
  private bufferFrom = 0n;
  private buffer: Positioned[] = [];
  /**
   * Holes in the log ahead of the cursor, each keyed by the visible position just after it, with when the tail first
   * saw it. Every hole in a batch is noted when the batch is read, so holes seen together settle together.
   */
  private holes = new Map<bigint, number>();
  /**
   * The entries at or below `head` that were visible when the tail started below a recent hole; the streams from
   * the end do not send them. Dropped once the cursor reaches `head`.
   */
  private startedBelow: { head: bigint; visible: Set<bigint> } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private starting: Promise<void> | undefined;
  private running = false;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly log: ConsoleEventLog,
    options: LiveOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 500;
    this.settleMs = options.settleMs ?? 2_000;
    // Monotonic: in wall time, a hole first seen just before the clock was stepped back an hour held every stream
    // behind it for the hour.
    this.clock = options.clock ?? systemClock;
    this.onError = options.onError;
  }

  private readonly onError: ((error: unknown) => void) | undefined;

  /** Streams open now. */
  get size(): number {
    return this.subscribers.size;
  }

  /** Whether the tail was shut down (`close`): no new stream is admitted. */
  get closed(): boolean {
    return this.stopped;
  }

  /**
   * A stream from just after `after` (a position), or from the end of the log as it is when this resolves: an
   * entry appended after that is sent. Rejects when the log cannot be read.
   */
  async subscribe(after: string | undefined): Promise<LiveSubscription> {
    if (after === undefined && this.cursor === undefined) await this.startOnce();
    const position = after === undefined ? (this.cursor ?? this.bufferFrom) : BigInt(after);
    const subscriber = new Subscriber(position, (s) => this.subscribers.delete(s));
    if (after === undefined) subscriber.skip = this.startedBelow?.visible;
    if (this.stopped) {
      subscriber.close();
      return subscriber;
    }
    this.subscribers.add(subscriber);
    if (!this.running) {
      this.running = true;
      this.schedule(0);
    }
    return subscriber;
  }

  /** The node is shutting down: every stream ends, and the tail reads no more. */
  close(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const subscriber of [...this.subscribers]) subscriber.close();
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.tick(), ms);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.cursor === undefined) await this.startOnce();
      await this.pull();
      await this.catchUp();
      this.failures = 0;
    } catch (error) {
      // The log could not be read (Postgres down, the breaker open): the streams stay open, the next tick retries.
      this.failures++;
      if (this.failures === 1) {
        try {
          this.onError?.(error);
        } catch {
          // An observer's failure never stops the tail.
        }
      }
    }
    this.fanOut();
    if (this.stopped) return;
    if (this.subscribers.size === 0) {
      // Nobody is watching: no more queries. The next stream starts from the end of the log as it is then.
      this.running = false;
      this.cursor = undefined;
      this.buffer = [];
      this.holes.clear();
      this.startedBelow = undefined;
      return;
    }
    this.schedule(this.intervalMs * 2 ** Math.min(this.failures, 4));
  }

  /**
   * Finds the end of the log: the cursor starts there, with an empty buffer. One query however many ask. If one of
   * the newest positions is still empty (an insert that took it may not have committed yet), the cursor starts just
   * below it instead, so that entry is waited for like any other hole, and the entries already visible above it are
   * remembered for the streams from the end to skip.
   */
  private startOnce(): Promise<void> {
    this.starting ??= (async () => {
      try {
        const newest = await this.log.latestActivity(recentPositions);
        const head = newest[0] ? BigInt(newest[0].position) : 0n;
        const visible = new Set(newest.map((entry) => BigInt(entry.position)));
        // The recent positions: those the newest entries span (from the first position when they are the whole
        // log), at most `recentPositions` below the head.
        const oldest = newest.at(-1);
        const spanFrom = oldest && newest.length === recentPositions ? BigInt(oldest.position) : 1n;
        let from = head - BigInt(recentPositions) + 1n;
        if (from < spanFrom) from = spanFrom;
        let firstHole: bigint | undefined;
        for (let at = from; at < head; at++) {
          if (!visible.has(at)) {
            firstHole = at;
            break;
          }
        }
        this.cursor = firstHole === undefined ? head : firstHole - 1n;
        this.bufferFrom = this.cursor;
        this.buffer = [];
        this.holes.clear();
        this.noteHoles(
          newest.map((entry) => BigInt(entry.position)).reverse(),
          this.cursor,
          this.clock.monotonic(),
        );
        this.startedBelow = firstHole === undefined ? undefined : { head, visible };
      } finally {
        this.starting = undefined;
      }
    })();
    return this.starting;
  }

  /** The one query of a tick (a few when a burst fills a batch): entries after the cursor, settled in order. */
  private async pull(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const cursor = this.cursor as bigint;
      const rows = await this.log.activityAfter(cursor.toString(), this.batch);
      const complete = this.settle(rows);
      if (!complete || rows.length < this.batch) return;
    }
  }

  /** Moves the cursor over `rows` (oldest first) as far as no young hole stops it; false if one did. */
  private settle(rows: ConsoleLogEntry[]): boolean {
    const now = this.clock.monotonic();
    this.noteHoles(
      rows.map((entry) => BigInt(entry.position)),
      this.cursor as bigint,
      now,
    );
    for (const entry of rows) {
      const at = BigInt(entry.position);
      const cursor = this.cursor as bigint;
      if (at <= cursor) continue;
      if (at !== cursor + 1n && now - (this.holes.get(at) ?? now) < this.settleMs) return false;
      this.holes.delete(at);
      this.cursor = at;
      this.buffer.push({ at, entry });
    }
    if (this.buffer.length > this.bufferSize) {
      const dropped = this.buffer.splice(0, this.buffer.length - this.bufferSize);
      this.bufferFrom = (dropped.at(-1) as Positioned).at;
    }
    return true;
  }

  /** Notes, at `now`, each hole first seen in `positions` (ascending) after `from`. */
  private noteHoles(positions: readonly bigint[], from: bigint, now: number): void {
    let previous = from;
    for (const at of positions) {
      if (at <= previous) continue;
      if (at > previous + 1n && !this.holes.has(at)) this.holes.set(at, now);
      previous = at;
    }
  }

  /** Streams resuming from before the buffer read forward on their own, one batch each, up to the cursor. */
  private async catchUp(): Promise<void> {
    const cursor = this.cursor as bigint;
    const behind = [...this.subscribers].filter((s) => s.position < this.bufferFrom);
    await Promise.all(
      behind.map(async (subscriber) => {
        const from = subscriber.position;
        const rows = await this.log.activityAfter(from.toString(), this.batch);
        if (subscriber.closed || subscriber.position !== from) return;
        const settled = rows.filter((row) => BigInt(row.position) <= cursor);
        subscriber.queue.push(...settled);
        // A short batch is everything after `from`: nothing else up to the cursor is missing.
        subscriber.position =
          rows.length < this.batch || settled.length < rows.length
            ? cursor
            : BigInt((settled.at(-1) as ConsoleLogEntry).position);
      }),
    );
  }

  private fanOut(): void {
    const cursor = this.cursor;
    if (cursor === undefined) return;
    // Once the cursor has passed the start's head, nothing left to skip comes up again.
    const startedBelow = this.startedBelow;
    if (startedBelow && cursor >= startedBelow.head) this.startedBelow = undefined;
    for (const subscriber of [...this.subscribers]) {
      const position = subscriber.position;
      if (position >= this.bufferFrom && position < cursor) {
        // The buffer holds every settled entry after bufferFrom, and the newest of them is at the cursor.
        let first = this.buffer.length;
        while (first > 0 && (this.buffer[first - 1] as Positioned).at > position) first--;
        const skip = subscriber.skip;
        for (const held of this.buffer.slice(first)) {
          if (!skip?.has(held.at)) subscriber.queue.push(held.entry);
        }
        subscriber.position = cursor;
      }
      if (subscriber.skip && !this.startedBelow) subscriber.skip = undefined;
      if (subscriber.queue.length > this.maxQueue) subscriber.close();
      else subscriber.flush();
    }
  }
}
