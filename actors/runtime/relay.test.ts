// Unit test of the relay against a small in-memory OutboxStore (a double of that one port).
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { Dependencies } from "../../shared/resilience/index.ts";
import { guardedTransport } from "./guarded.ts";
import {
  defaultRelayPolicy,
  failedSendDelay,
  namedInWarning,
  relayFailureFields,
  relayOnce,
  retryDelay,
} from "./relay.ts";
import type { OutboxFailure, OutboxRecord, OutboxStore } from "./storage.ts";
import { SubscriptionRegistry, subscribe } from "./subscriptions.ts";

class MemoryOutbox implements OutboxStore {
  rows: Array<OutboxRecord & { retryAt: number }> = [];
  /** Calls that wrote failures: on the local host each is a transaction, with an fsync. */
  failureWrites = 0;
  add(actor: string, envelope: Envelope) {
    this.rows.push({ seq: this.rows.length + 1, actor, envelope, attempts: 0, retryAt: 0 });
  }
  async pending(now: number, limit: number, _maxBytes: number, notAfter: number) {
    const waiting = this.rows.filter((row) => row.retryAt > now && row.retryAt <= notAfter);
    const blocked = new Set(waiting.map((row) => row.actor));
    return this.rows.filter((row) => !blocked.has(row.actor)).slice(0, limit);
  }
  async delivered(seqs: number[]) {
    this.rows = this.rows.filter((row) => !seqs.includes(row.seq));
  }
  async failed(entries: OutboxFailure[]) {
    this.failureWrites++;
    for (const { seq, attempts, retryAt } of entries) {
      const row = this.rows.find((item) => item.seq === seq);
      if (row) Object.assign(row, { attempts, retryAt });
    }
  }
  async nextDue() {
    return this.rows.length === 0 ? undefined : Math.min(...this.rows.map((row) => row.retryAt));
  }
}

const message = (n: number) => createEnvelope({ type: "M", source: "s", data: { n } });
const policy = { batchSize: 100, baseDelayMs: 100, maxDelayMs: 1_000 };

describe("outbox relay", () => {
  test("sends every actor's entries in one call, each actor's in order, and removes them", async () => {
    const outbox = new MemoryOutbox();
    for (let n = 1; n <= 3; n++) outbox.add("a/1", message(n));
    outbox.add("b/1", message(9));
    const batches: number[][] = [];
    const pass = await relayOnce(
      outbox,
      { send: async (list) => void batches.push(list.map((e) => (e.data as { n: number }).n)) },
      new ManualClock(),
      policy,
    );
    expect(pass).toEqual({ sent: 4, failed: 0 });
    // One call, so one broker commit for the pass instead of one per actor.
    expect(batches).toEqual([[1, 2, 3, 9]]);
    expect(outbox.rows).toHaveLength(0);
  });

  test("a message the queue refuses holds back only its own actor: the pass falls back to one call per actor", async () => {
    const outbox = new MemoryOutbox();
    const clock = new ManualClock();
    outbox.add("a/1", message(1));
    outbox.add("poisoned/1", message(666));
    outbox.add("b/1", message(2));
    outbox.add("a/1", message(3));
    const calls: number[][] = [];
    const transport = {
      send: async (list: Envelope[]) => {
        const ns = list.map((e) => (e.data as { n: number }).n);
        calls.push(ns);
        if (ns.includes(666)) throw new Error("broker refused 1 of the messages");
      },
    };
    const pass = await relayOnce(outbox, transport, clock, policy);
    expect(pass).toMatchObject({ sent: 3, failed: 1 });
    expect(calls[0]).toEqual([1, 3, 666, 2]);
    expect(calls.slice(1).sort()).toEqual([[1, 3], [2], [666]]);
    expect(outbox.rows.map((row) => row.actor)).toEqual(["poisoned/1"]);
    expect(outbox.rows[0]?.attempts).toBe(1);
  });

  test("a pass whose sends all fail writes its entries' backoffs in one call, not one per entry", async () => {
    const outbox = new MemoryOutbox();
    for (let n = 0; n < 256; n++) outbox.add(`a/${n}`, message(n));
    const down = { send: async () => Promise.reject(new Error("connection refused")) };
    const pass = await relayOnce(outbox, down, new ManualClock(), { ...policy, batchSize: 256 });
    expect(pass).toMatchObject({ sent: 0, failed: 256 });
    expect(outbox.rows.every((row) => row.attempts === 1 && row.retryAt > 0)).toBe(true);
    // One per entry before: 256 transactions with an fsync each, about a second with the node's loop blocked.
    expect(outbox.failureWrites).toBe(1);
  });

  test("a failed actor backs off while others proceed, and keeps its order on retry", async () => {
    const outbox = new MemoryOutbox();
    const clock = new ManualClock();
    outbox.add("a/1", message(1));
    outbox.add("b/1", message(2));
    const sent: number[] = [];
    let downFor = "a/1";
    const transport = {
      send: async (list: Envelope[]) => {
        if (list[0]?.source === downFor) throw new Error("down");
        sent.push(...list.map((e) => (e.data as { n: number }).n));
      },
    };
    for (const row of outbox.rows) row.envelope.source = row.actor;
    const first = await relayOnce(outbox, transport, clock, policy);
    expect(first.failed).toBe(1);
    expect(sent).toEqual([2]);
    outbox.add("a/1", { ...message(3), source: "a/1" });
    // Still backing off: the newer entry must not overtake the failed one.
    await relayOnce(outbox, transport, clock, policy);
    expect(sent).toEqual([2]);
    downFor = "";
    clock.advance(policy.maxDelayMs);
    await relayOnce(outbox, transport, clock, policy);
    expect(sent).toEqual([2, 1, 3]);
  });

  test("a queue down for 60 s behind its breaker: retries come at its probes, and all drain within one after", async () => {
    const clock = new ManualClock(0);
    const dependencies = new Dependencies({ clock }); // the node's defaults: half-open 5 s after opening
    let down = true;
    let queueCalls = 0;
    const sent: string[] = [];
    const transport = guardedTransport(
      {
        send: async (list) => {
          queueCalls++;
          if (down) throw new Error("connection refused");
          sent.push(...list.map((e) => e.source));
        },
      },
      dependencies,
      "broker",
    );
    const outbox = new MemoryOutbox();
    for (const actor of ["a/1", "b/1", "c/1", "d/1"]) outbox.add(actor, { ...message(1), source: actor });
    // Each pass runs when the next entry is due, as the host's relay loop does.
    const runUntil = async (until: number) => {
      while (outbox.rows.length > 0 && clock.now() < until) {
        await relayOnce(outbox, transport, clock, defaultRelayPolicy);
        const next = await outbox.nextDue();
        if (next !== undefined && next > clock.now()) clock.advance(next - clock.now());
      }
    };
    await runUntil(60_000);
    expect(outbox.rows).toHaveLength(4);
    // The breaker keeps the load off: its first 5 failures, then about one probe per 5 s.
    expect(queueCalls).toBeLessThanOrEqual(5 + 14);
    expect(Math.max(...outbox.rows.map((row) => row.attempts))).toBeGreaterThan(8); // 250 ms·2^8 > 60 s
    const healedAt = clock.now();
    down = false;
    await runUntil(healedAt + 60_000);
    expect(sent.sort()).toEqual(["a/1", "b/1", "c/1", "d/1"]);
    // One reset (5 s), its jitter (1 s) and a half-open refusal's second: not the backoff's 30–60 s.
    expect(clock.now() - healedAt).toBeLessThanOrEqual(8_000);
  });

  test("a failed send waits no longer than the breaker's next probe; a throwing key selector backs off", async () => {
    const late = { ...policy, maxDelayMs: 60_000 };
    expect(failedSendDelay(11, late, undefined, () => 1)).toBe(60_000);
    expect(failedSendDelay(11, late, 4_000, () => 0)).toBe(4_000);
    expect(failedSendDelay(11, late, 4_000, () => 1)).toBe(5_000);
    expect(failedSendDelay(1, late, 4_000, () => 1)).toBe(100); // the backoff, when it is sooner
    const outbox = new MemoryOutbox();
    const clock = new ManualClock(0);
    outbox.add("a/1", message(1));
    const first = outbox.rows[0] as OutboxRecord;
    first.attempts = 10;
    const available = { send: async () => {}, availableInMs: () => 0 };
    const throwing = new SubscriptionRegistry([
      subscribe({
        event: "M",
        actor: "audit",
        keys: () => {
          throw new Error("selector bug");
        },
      }),
    ]);
    await relayOnce(outbox, available, clock, late, throwing);
    expect(outbox.rows[0]?.retryAt).toBeGreaterThanOrEqual(30_000);
    clock.advance(outbox.rows[0]?.retryAt ?? 0);
    await relayOnce(
      outbox,
      { ...available, send: async () => Promise.reject(new Error("down")) },
      clock,
      late,
    );
    expect((outbox.rows[0]?.retryAt ?? 0) - clock.now()).toBeLessThanOrEqual(1_000);
  });

  test("an actor whose key selector throws partway takes none of the pass's room: the other actors send up to the bound", async () => {
    const outbox = new MemoryOutbox();
    for (const n of [1, 2, 3]) outbox.add("a/1", message(n));
    for (const n of [4, 5]) outbox.add("b/1", message(n));
    // Two deliveries an event; a/1's third event makes the selector throw, after its first two have expanded.
    const registry = new SubscriptionRegistry([
      subscribe({
        event: "M",
        actor: "audit",
        keys: (data) => {
          const { n } = data as { n: number };
          if (n === 3) throw new Error("selector bug");
          return [`x${n}`, `y${n}`];
        },
      }),
    ]);
    const sent: number[] = [];
    const pass = await relayOnce(
      outbox,
      { send: async (list) => void sent.push(...list.map((e) => (e.data as { n: number }).n)) },
      new ManualClock(),
      { ...policy, maxDeliveries: 4 },
      registry,
    );
    expect(pass).toMatchObject({ sent: 2, failed: 3 });
    expect(sent).toEqual([4, 4, 5, 5]);
    expect(outbox.rows.map((row) => (row.envelope.data as { n: number }).n)).toEqual([1, 2, 3]);
  });

  test("a rate-limited send: no call per actor, and no retry before the queue's reset (the longest backoff at most)", async () => {
    const outbox = new MemoryOutbox();
    for (const actor of ["a/1", "b/1", "c/1"]) outbox.add(actor, message(1));
    const clock = new ManualClock(0);
    const limit = new Error("429");
    let calls = 0;
    let waitMs = 700;
    const limited = {
      send: async () => {
        calls++;
        throw limit;
      },
      retryAfterMs: (error: unknown) => (error === limit ? waitMs : undefined),
    };
    const pass = await relayOnce(outbox, limited, clock, policy);
    expect(pass).toMatchObject({ sent: 0, failed: 3, lastError: limit });
    // One call for the pass; before, the refused batch fell back to a call per actor, each refused the same way.
    expect(calls).toBe(1);
    // The first backoff is 50-100 ms: every entry waits for the reset instead.
    expect(outbox.rows.map((row) => row.retryAt)).toEqual([700, 700, 700]);
    // A daily limit's reset hours away: as long as the longest backoff (a later retry time would read as due).
    waitMs = 5 * 3_600_000;
    clock.advance(700);
    await relayOnce(outbox, limited, clock, policy);
    expect(outbox.rows.map((row) => row.retryAt - clock.now())).toEqual([1_000, 1_000, 1_000]);
  });

  test("a failed pass names its messages and their actors, in outbox order, the first ten of each and a count", async () => {
    const outbox = new MemoryOutbox();
    // 12 actors with 2 messages each, interleaved as turns commit; one actor's messages still go out.
    for (let n = 0; n < 26; n++) outbox.add(`order/o${n % 13}`, message(n));
    const refused = {
      send: async (list: Envelope[]) => {
        if (list.some((envelope) => envelope.data && (envelope.data as { n: number }).n % 13 !== 12))
          throw new Error("down");
      },
    };
    const pass = await relayOnce(outbox, refused, new ManualClock(), policy);
    const failed = outbox.rows.map((row) => ({ id: row.envelope.id, actor: row.actor }));
    expect(failed).toHaveLength(24);
    expect(pass).toMatchObject({ sent: 2, failed: 24, failedMessages: failed });
    expect(relayFailureFields(pass.failedMessages ?? [])).toEqual({
      message_ids: failed.slice(0, namedInWarning).map((message) => message.id),
      message_count: 24,
      actors: Array.from({ length: namedInWarning }, (_, n) => `order/o${n}`),
      actor_count: 12,
    });
  });

  test("backoff doubles per attempt with jitter, up to the cap", () => {
    expect(retryDelay(1, policy, () => 0)).toBe(50);
    expect(retryDelay(1, policy, () => 1)).toBe(100);
    expect(retryDelay(3, policy, () => 1)).toBe(400);
    expect(retryDelay(20, policy, () => 1)).toBe(1_000);
  });
});
