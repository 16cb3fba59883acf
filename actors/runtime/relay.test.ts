// Unit test of the relay against a small in-memory OutboxStore (a double of that one port).
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { relayOnce, retryDelay } from "./relay.ts";
import type { OutboxRecord, OutboxStore } from "./storage.ts";

class MemoryOutbox implements OutboxStore {
  rows: Array<OutboxRecord & { retryAt: number }> = [];
  add(actor: string, envelope: Envelope) {
    this.rows.push({ seq: this.rows.length + 1, actor, envelope, attempts: 0, retryAt: 0 });
  }
  async pending(now: number, limit: number) {
    const blocked = new Set(this.rows.filter((row) => row.retryAt > now).map((row) => row.actor));
    return this.rows.filter((row) => !blocked.has(row.actor)).slice(0, limit);
  }
  async delivered(seqs: number[]) {
    this.rows = this.rows.filter((row) => !seqs.includes(row.seq));
  }
  async failed(seq: number, attempts: number, retryAt: number) {
    const row = this.rows.find((item) => item.seq === seq);
    if (row) Object.assign(row, { attempts, retryAt });
  }
  async nextDue() {
    return undefined;
  }
}

const message = (n: number) => createEnvelope({ type: "M", source: "s", data: { n } });
const policy = { batchSize: 100, baseDelayMs: 100, maxDelayMs: 1_000 };

describe("outbox relay", () => {
  test("sends each actor's entries as one ordered batch and removes them", async () => {
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
    expect(batches.sort()).toEqual([[1, 2, 3], [9]]);
    expect(outbox.rows).toHaveLength(0);
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

  test("backoff doubles per attempt with jitter, up to the cap", () => {
    expect(retryDelay(1, policy, () => 0)).toBe(50);
    expect(retryDelay(1, policy, () => 1)).toBe(100);
    expect(retryDelay(3, policy, () => 1)).toBe(400);
    expect(retryDelay(20, policy, () => 1)).toBe(1_000);
  });
});
