// A relay pass's requests to QStash stay within a Worker invocation's subrequests, however widely its events fan out.
import { expect, test } from "bun:test";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { defaultRelayPolicy, relayOnce } from "../runtime/relay.ts";
import type { OutboxFailure, OutboxRecord, OutboxStore } from "../runtime/storage.ts";
import { SubscriptionRegistry, subscribe } from "../runtime/subscriptions.ts";
import { countingQStash, freePlanSubrequests } from "./counting-qstash.ts";

/** One Durable Object's outbox (one actor), in memory: a double of the OutboxStore port. */
class MemoryOutbox implements OutboxStore {
  rows: OutboxRecord[] = [];
  add(envelope: Envelope) {
    this.rows.push({ seq: this.rows.length + 1, actor: "publisher/one", envelope, attempts: 0 });
  }
  async pending(_now: number, limit: number) {
    return this.rows.slice(0, limit);
  }
  async delivered(seqs: number[]) {
    this.rows = this.rows.filter((row) => !seqs.includes(row.seq));
  }
  async failed(_entries: OutboxFailure[]) {
    throw new Error("no send fails in this test");
  }
  async nextDue() {
    return this.rows.length === 0 ? undefined : 0;
  }
}

/** Every `Announced` event goes to 40 listeners. */
const listeners = 40;
const subscriptions = new SubscriptionRegistry([
  subscribe<{ n: number }>({
    event: "Announced",
    actor: "listener",
    keys: () => Array.from({ length: listeners }, (_, i) => `l${i}`),
  }),
]);

test("a page of 256 events to 40 subscribers each: no pass makes more than 19 requests, and every delivery goes out once, in order", async () => {
  const outbox = new MemoryOutbox();
  for (let n = 0; n < 256; n++) {
    outbox.add(createEnvelope({ type: "Announced", source: "edgewise://publisher/one", data: { n } }));
  }
  const { transport, published, requests: taken } = countingQStash();
  const clock = new ManualClock();
  const perPass: number[] = [];
  while (outbox.rows.length > 0 && perPass.length < 100) {
    const pass = await relayOnce(outbox, transport, clock, defaultRelayPolicy, subscriptions);
    expect(pass.failed).toBe(0);
    perPass.push(taken());
  }

  // What a Worker relies on: each pass (one alarm) within the Free plan's 50 subrequests, with room for the
  // telemetry export. Before the bound, the one pass made 103.
  expect(Math.max(...perPass)).toBeLessThanOrEqual(19);
  expect(Math.max(...perPass)).toBeLessThan(freePlanSubrequests);
  expect(perPass.length).toBeGreaterThan(1);
  // Nothing lost, nothing twice, each listener's deliveries in the events' order.
  expect(published).toHaveLength(256 * listeners);
  const seen = new Set(published.map((delivery) => `${delivery.id}>${delivery.target}`));
  expect(seen.size).toBe(256 * listeners);
  const forOne = published
    .filter((delivery) => delivery.target === "listener/l7")
    .map((delivery) => (delivery.data as { n: number }).n);
  expect(forOne).toEqual(Array.from({ length: 256 }, (_, n) => n));
});

test("one event that alone expands past the bounds still goes, whole, in a pass of its own", async () => {
  const outbox = new MemoryOutbox();
  const wide = new SubscriptionRegistry([
    subscribe({
      event: "Wide",
      actor: "listener",
      keys: () => Array.from({ length: 1_200 }, (_, i) => `w${i}`),
    }),
  ]);
  outbox.add(createEnvelope({ type: "Wide", source: "edgewise://publisher/one", data: {} }));
  outbox.add(createEnvelope({ type: "Wide", source: "edgewise://publisher/one", data: {} }));
  const { transport, published } = countingQStash();
  const first = await relayOnce(outbox, transport, new ManualClock(), defaultRelayPolicy, wide);
  expect(first.sent).toBe(1);
  expect(published).toHaveLength(1_200);
  const second = await relayOnce(outbox, transport, new ManualClock(), defaultRelayPolicy, wide);
  expect(second.sent).toBe(1);
  expect(outbox.rows).toHaveLength(0);
});
