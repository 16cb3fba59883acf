// The billing outbox relay on a real Postgres: seq order, batches, retry with backoff, and the notified loop.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { connect, type Sql } from "../../../deploy/local/broker/db.ts";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { RecordingTransport } from "../../../test/support/memory-transport.ts";
import type { Transport } from "../../runtime/transport.ts";
import { BillingLedger, BillingOutboxRelay } from "./index.ts";

const url = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `billing_test_outbox_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const policy = { batchSize: 3, baseDelayMs: 40, maxDelayMs: 200 };
let sql: Sql;

beforeAll(async () => {
  sql = await connect({ url, max: 4, schema });
  await new BillingLedger(sql).migrate();
});

beforeEach(async () => {
  await sql`DELETE FROM billing_outbox`;
});

afterAll(async () => {
  await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
  await sql.end();
});

let orders = 0;
function payment(customerId: string, amountCents: number): Envelope {
  const orderId = `ob-${++orders}`;
  return createEnvelope({
    type: "PaymentRequested",
    source: `edgewise://actor/order/${orderId}`,
    target: `billing/${customerId}`,
    data: { orderId, customerId, amountCents },
  });
}

/** Commits `n` replies through the ledger and returns them in commit order. */
async function replies(ledger: BillingLedger, customerId: string, n: number): Promise<Envelope[]> {
  await ledger.putAccount(customerId, 1_000_000);
  const out: Envelope[] = [];
  for (let i = 0; i < n; i++) out.push((await ledger.receive(payment(customerId, 1))).reply as Envelope);
  return out;
}

const ids = (envelopes: Envelope[]) => envelopes.map((envelope) => envelope.id);
/** Postgres's clock now, to microseconds (as text, which a JS Date would round to milliseconds). */
const pgNow = async () => ((await sql`SELECT clock_timestamp()::text AS at`)[0]?.at ?? "") as string;

/**
 * Runs `pass`, and says when the outbox's row is due, in ms, counted from just before the pass and from just after
 * it: the wait the relay set lies between the two, however long the pass took on a busy machine.
 */
async function dueAfter(pass: () => Promise<unknown>) {
  const before = await pgNow();
  await pass();
  const after = await pgNow();
  const [row] = await sql`
    SELECT attempts,
      extract(epoch FROM available_at - ${before}::timestamptz) * 1000 AS "fromBefore",
      extract(epoch FROM available_at - ${after}::timestamptz) * 1000 AS "fromAfter"
    FROM billing_outbox`;
  return { attempts: row?.attempts, fromBefore: Number(row?.fromBefore), fromAfter: Number(row?.fromAfter) };
}

const outboxRows = async () =>
  (await sql`SELECT attempts, last_error FROM billing_outbox ORDER BY seq`).map((row) => ({
    attempts: row.attempts,
    failed: row.last_error !== null,
  }));

describe("billing outbox relay", () => {
  test("relays in seq order, in batches, and deletes only what was sent", async () => {
    const ledger = new BillingLedger(sql);
    const expected = await replies(ledger, "relay-order", 7);
    const transport = new RecordingTransport();
    const relay = new BillingOutboxRelay(sql, transport, { policy });
    expect(await relay.pending()).toBe(7);
    const passes = [];
    for (let i = 0; i < 4; i++) passes.push(await relay.relayOnce());
    expect(passes.map((pass) => pass.sent)).toEqual([3, 3, 1, 0]);
    expect(transport.attempts).toBe(3);
    expect(ids(transport.sent)).toEqual(ids(expected));
    expect(transport.sent).toEqual(expected);
    expect(await relay.pending()).toBe(0);
  });

  test("a failed send keeps the batch, backs off, holds back later messages, and resends the same ids", async () => {
    const ledger = new BillingLedger(sql);
    const expected = await replies(ledger, "relay-retry", 2);
    const transport = new RecordingTransport();
    // A first backoff of 200-400 ms: with 40 ms (20-40 ms), a busy machine's commit of `later` outlasted it.
    const slower = { ...policy, baseDelayMs: 400, maxDelayMs: 400 };
    const relay = new BillingOutboxRelay(sql, transport, { policy: slower });
    transport.failing = true;
    const failed = await relay.relayOnce();
    expect(failed).toMatchObject({ sent: 0, failed: 2 });
    expect(failed.lastError).toBeInstanceOf(Error);
    expect(await outboxRows()).toEqual([
      { attempts: 1, failed: true },
      { attempts: 1, failed: true },
    ]);
    // Backing off: nothing is due, not even a message committed after the failed batch.
    transport.failing = false;
    const later = await replies(ledger, "relay-retry", 1);
    expect(await relay.relayOnce()).toEqual({ sent: 0, failed: 0 });
    expect(transport.sent).toEqual([]);
    // Once due, the same envelopes go again, still first.
    await Bun.sleep(slower.baseDelayMs + 10);
    expect((await relay.relayOnce()).sent).toBe(3);
    expect(ids(transport.sent)).toEqual(ids([...expected, ...later]));
    expect(transport.sent.slice(0, 2)).toEqual(expected);
    expect(await relay.pending()).toBe(0);
  });

  test("a backoff set before the clock was stepped back an hour is due: later replies are not held for the hour", async () => {
    const ledger = new BillingLedger(sql);
    const expected = await replies(ledger, "relay-stepped", 2);
    const transport = new RecordingTransport();
    const relay = new BillingOutboxRelay(sql, transport, { policy });
    transport.failing = true;
    expect(await relay.relayOnce()).toMatchObject({ sent: 0, failed: 2 });
    transport.failing = false;
    // Postgres's clock (with PGlite, the node's own) is stepped back an hour: as it now reads, the backoff the
    // failed send wrote ends an hour and a moment from now.
    await sql`UPDATE billing_outbox SET available_at = available_at + interval '1 hour'`;
    const later = await replies(ledger, "relay-stepped", 1);
    expect((await relay.relayOnce()).sent).toBe(3);
    expect(ids(transport.sent)).toEqual(ids([...expected, ...later]));
    // A lease or backoff within reach still holds the outbox, as before.
    const held = await replies(ledger, "relay-stepped", 1);
    await sql`UPDATE billing_outbox SET available_at = now() + interval '5 seconds'`;
    expect(await relay.relayOnce()).toEqual({ sent: 0, failed: 0 });
    expect(ids(transport.sent)).not.toContain(held[0]?.id);
  });

  test("attempts grow the backoff up to the policy's ceiling", async () => {
    const ledger = new BillingLedger(sql);
    await replies(ledger, "relay-backoff", 1);
    const transport = new RecordingTransport();
    transport.failing = true;
    const relay = new BillingOutboxRelay(sql, transport, { policy });
    for (let attempt = 1; attempt <= 3; attempt++) {
      await sql`UPDATE billing_outbox SET available_at = now()`;
      const due = await dueAfter(() => relay.relayOnce());
      expect(due.attempts).toBe(attempt);
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      // The delay can be the ceiling itself (it is rounded to the ms), and `after` is the wall clock read on another
      // connection, which a VM's clock can place a few µs before the relay's now() (CI on a2507cc: 80.025 > 80); `before`
      // likewise.
      expect(due.fromAfter).toBeLessThanOrEqual(ceiling + 1);
      expect(due.fromBefore).toBeGreaterThanOrEqual(ceiling / 2 - 1);
    }
  });

  test("while the broker's breaker is open, a failed batch is due again at its next probe, not after the backoff", async () => {
    const ledger = new BillingLedger(sql);
    await replies(ledger, "relay-breaker", 1);
    const slowBackoff = { ...policy, baseDelayMs: 20_000, maxDelayMs: 60_000 };
    const down: Transport = {
      send: async () => Promise.reject(new Error("connection refused")),
      availableInMs: () => 300,
    };
    const due = await dueAfter(() => new BillingOutboxRelay(sql, down, { policy: slowBackoff }).relayOnce());
    expect(due.fromBefore).toBeGreaterThanOrEqual(300);
    expect(due.fromAfter).toBeLessThanOrEqual(1_300); // the probe, plus up to 1 s of jitter
  });

  test("a batch refused for a rate limit is due again at the limit's reset, not after the first backoff", async () => {
    const ledger = new BillingLedger(sql);
    await replies(ledger, "relay-limited", 1);
    const limit = new Error("429");
    const limited: Transport = {
      send: async () => Promise.reject(limit),
      retryAfterMs: (error) => (error === limit ? 150 : undefined),
    };
    // The first backoff is 20-40 ms; the queue asked for 150 (the policy's ceiling is 200).
    const due = await dueAfter(() => new BillingOutboxRelay(sql, limited, { policy }).relayOnce());
    expect(due.fromBefore).toBeGreaterThanOrEqual(150);
    expect(due.fromAfter).toBeLessThanOrEqual(151);
  });

  test("a claimed batch is leased: a second relay sends nothing while the first one is sending", async () => {
    const ledger = new BillingLedger(sql);
    await replies(ledger, "relay-lease", 2);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const sendStarted = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const slow = new RecordingTransport();
    const first = new BillingOutboxRelay(sql, {
      send: async (envelopes) => {
        entered();
        await gate;
        await slow.send(envelopes);
      },
    });
    const other = new RecordingTransport();
    const second = new BillingOutboxRelay(sql, other);
    const sending = first.relayOnce();
    await sendStarted;
    expect(await second.relayOnce()).toEqual({ sent: 0, failed: 0 });
    release();
    expect((await sending).sent).toBe(2);
    expect(other.sent).toEqual([]);
    expect(slow.sent).toHaveLength(2);
  });

  test("a batch claimed by a relay that died mid-send goes out through another within the default lease (10 s)", async () => {
    const ledger = new BillingLedger(sql);
    const expected = await replies(ledger, "relay-dead", 2);
    let entered: () => void = () => {};
    const sendStarted = new Promise<void>((resolve) => {
      entered = resolve;
    });
    // The first relay claims the batch and never finishes sending it, as if its process had been killed.
    const dead = new BillingOutboxRelay(sql, {
      send: () => {
        entered();
        return new Promise<void>(() => {});
      },
    });
    void dead.relayOnce();
    await sendStarted;
    const claimedAt = Date.now();
    const survivor = new RecordingTransport();
    const other = new BillingOutboxRelay(sql, survivor);
    expect(await other.relayOnce()).toEqual({ sent: 0, failed: 0 });
    while (survivor.sent.length === 0 && Date.now() - claimedAt < 15_000) {
      await other.relayOnce();
      if (survivor.sent.length === 0) await Bun.sleep(250);
    }
    expect(ids(survivor.sent)).toEqual(ids(expected));
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(9_500);
    expect(Date.now() - claimedAt).toBeLessThan(12_000);
  }, 20_000);

  test("start() relays right after a commit when notified, retries after a failure, and stop() ends the loop", async () => {
    const transport = new RecordingTransport();
    const errors: string[] = [];
    const relay = new BillingOutboxRelay(sql, transport, {
      policy,
      intervalMs: 60_000,
      onError: (what) => errors.push(what),
    });
    const ledger = new BillingLedger(sql, { onCommitted: () => relay.notify() });
    await ledger.putAccount("relay-loop", 100);
    relay.start();
    try {
      await Bun.sleep(20);
      const first = (await ledger.receive(payment("relay-loop", 10))).reply as Envelope;
      await transport.waitFor(1, 2_000);
      expect(ids(transport.sent)).toEqual([first.id]);
      transport.failing = true;
      const second = (await ledger.receive(payment("relay-loop", 10))).reply as Envelope;
      const deadline = Date.now() + 2_000;
      while (errors.length === 0 && Date.now() < deadline) await Bun.sleep(5);
      expect(errors[0]).toContain("will be retried");
      transport.failing = false;
      // No notify and a long interval: the loop wakes up by itself for the retry.
      await transport.waitFor(2, 2_000);
      expect(ids(transport.sent)).toEqual([first.id, second.id]);
    } finally {
      await relay.stop();
    }
    await new BillingLedger(sql).receive(payment("relay-loop", 10));
    await Bun.sleep(50);
    expect(transport.sent).toHaveLength(2);
    expect(await relay.pending()).toBe(1);
  });
});
