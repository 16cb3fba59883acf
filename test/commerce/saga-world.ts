// The commerce saga on its real code, with the queue played by the test: the local host on a temp SQLite file, the
// billing ledger and its outbox in Postgres, and every message held in a pool until a schedule delivers it.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { BillingOutboxRelay } from "../../actors/commerce/billing/index.ts";
import type { BillingTestDatabase } from "../../actors/commerce/billing/testing.ts";
import { commerceActorSubscriptions, commerceActors } from "../../actors/commerce/actors.ts";
import { customerKey } from "../../actors/commerce/customer-key.ts";
import { type InventoryState, inventoryActor, type OrderRecord } from "../../actors/commerce/inventory.ts";
import type { OrderView } from "../../actors/commerce/order.ts";
import { LocalActorHost } from "../../actors/hosts/local/host.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { SubscriptionRegistry, targetOf } from "../../actors/runtime/index.ts";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { RecordingTransport } from "../support/memory-transport.ts";

/**
 * The queue's choices, from a PRNG (mulberry32) seeded by the schedule, so a run replays from its seed. A finite list
 * of choices from fast-check would run out within a few dozen deliveries and leave the rest of a run in order.
 */
export class Choices {
  private state: number;
  constructor(seed: number) {
    this.state = seed | 0;
  }
  next(range: number): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * range);
  }
}

/**
 * A message the queue still owes: delivered `copies` more times, in any order with the others, and not before step
 * `dueAt` (a late one: a retry in its backoff, while commands and other messages go on).
 */
interface InFlight {
  envelope: Envelope;
  copies: number;
  dueAt: number;
}

/** One world per schedule: a fresh SQLite file, and this run's ids in a Postgres schema the runs share. */
export class SagaWorld {
  readonly clock = new ManualClock();
  host: LocalActorHost;
  private transport = new RecordingTransport();
  private readonly billingTransport = new RecordingTransport();
  private readonly billingRelay: BillingOutboxRelay;
  private readonly pool: InFlight[] = [];
  private seenActor = 0;
  private seenBilling = 0;
  /** Steps of the queue so far: the clock of `dueAt`. */
  private steps = 0;
  private readonly firstIds = new Map<string, string>();
  /** Orders whose OrderConfirmed was published, in that order: a racing cancel waits for the next one. */
  readonly confirmed: string[] = [];
  /** Saga steps an order's nudge sent again under a new id (an inventory's fan-out counts once per sku). */
  resent = 0;
  /** Every delivery made, in order, for a failure's report. */
  readonly log: string[] = [];
  /** What the relays and timers reported failing (none is expected: nothing here injects faults). */
  readonly failures: string[] = [];

  constructor(
    private readonly db: BillingTestDatabase,
    private readonly file: string,
    private readonly choices: Choices,
    /** One message in `lateOdds` is held back (1 in 4 unless a schedule says otherwise). */
    private readonly lateOdds = 4,
  ) {
    this.host = this.openHost();
    this.billingRelay = new BillingOutboxRelay(db.sql, this.billingTransport, {
      onError: (what, error) => this.failures.push(`billing relay: ${what}: ${String(error)}`),
    });
  }

  private openHost(): LocalActorHost {
    return new LocalActorHost({
      actors: commerceActors,
      db: openBunSqlite(this.file, "NORMAL"),
      transport: this.transport,
      subscriptions: new SubscriptionRegistry(commerceActorSubscriptions),
      clock: this.clock,
      onBackgroundError: (what, error) => this.failures.push(`${what}: ${String(error)}`),
    });
  }

  /** The node restarts on the same data file: its timers come back from it; messages in the queue stay there. */
  async restart(): Promise<void> {
    await this.host.stop();
    this.transport = new RecordingTransport();
    this.seenActor = 0;
    this.host = this.openHost();
  }

  async stop(): Promise<void> {
    await this.host.stop();
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${this.file}${suffix}`, { force: true });
  }

  /** Relays both outboxes and fires due timers; whatever they sent joins the pool, each 1–3 times. */
  async relay(): Promise<void> {
    await this.host.tick();
    while ((await this.billingRelay.relayOnce()).sent > 0) {}
    const fresh = [
      ...this.transport.sent.slice(this.seenActor),
      ...this.billingTransport.sent.slice(this.seenBilling),
    ];
    this.seenActor = this.transport.sent.length;
    this.seenBilling = this.billingTransport.sent.length;
    for (const envelope of fresh) {
      const orderId = (envelope.data as { orderId?: string }).orderId;
      if (envelope.type === "OrderConfirmed" && orderId !== undefined && !this.confirmed.includes(orderId))
        this.confirmed.push(orderId);
      if (envelope.type === "OrderPlaced" || envelope.type === "PaymentRequested") {
        const step = `${envelope.type} ${(envelope.data as { orderId: string }).orderId}`;
        const id = this.firstIds.get(step);
        if (id === undefined) this.firstIds.set(step, envelope.id);
        else if (id !== envelope.id) this.resent++;
      }
      this.enqueue(envelope);
    }
  }

  /** Hands a message to the queue (at least once: 1–3 deliveries). */
  enqueue(envelope: Envelope): void {
    const late = this.choices.next(this.lateOdds) === 0;
    this.pool.push({
      envelope,
      copies: 1 + this.choices.next(3),
      dueAt: this.steps + (late ? 1 + this.choices.next(60) : 0),
    });
  }

  /** Holds back every message in flight for 1–30 more steps each (a stalled partition): later ones overtake them. */
  holdBack(): void {
    for (const entry of this.pool)
      entry.dueAt = Math.max(entry.dueAt, this.steps + 1 + this.choices.next(30));
  }

  /**
   * One step of the queue: delivers one copy of a due message the schedule picks, now and then three at once, as a
   * broker does; with none due, only time passes.
   */
  async step(): Promise<void> {
    this.steps++;
    const burst = this.choices.next(8) === 7 ? 3 : 1;
    const picked: Envelope[] = [];
    for (let n = 0; n < burst; n++) {
      const due = this.pool.flatMap((entry, index) => (entry.dueAt <= this.steps ? [index] : []));
      if (due.length === 0) break;
      const index = due[this.choices.next(due.length)] as number;
      const entry = this.pool[index] as InFlight;
      picked.push(entry.envelope);
      if (--entry.copies === 0) this.pool.splice(index, 1);
    }
    if (picked.length === 0) return;
    await Promise.all(picked.map((envelope) => this.deliver(envelope)));
    await this.relay();
  }

  /**
   * Delivers until the queue and both outboxes are empty; time skips ahead to a late message when none is due.
   * `afterStep` runs after each step, and answers whether it asked an actor anything (whose messages then join).
   */
  async drain(afterStep: () => Promise<boolean> = async () => false, maxSteps = 5_000): Promise<void> {
    await this.relay();
    for (let n = 0; this.pool.length > 0; n++) {
      if (n === maxSteps) throw new Error(`the queue did not drain in ${maxSteps} steps`);
      if (this.pool.every((entry) => entry.dueAt > this.steps + 1))
        this.steps = Math.min(...this.pool.map((entry) => entry.dueAt)) - 1;
      await this.step();
      if (await afterStep()) await this.relay();
    }
  }

  /** A retryable failure (a database conflict twice) goes back to the queue, as the broker retries a 5xx. */
  private async deliver(envelope: Envelope): Promise<void> {
    this.log.push(`${envelope.type} → ${envelope.target} (${envelope.id.slice(-8)})`);
    try {
      const { type } = targetOf(envelope);
      if (type === "billing") await this.db.ledger.receive(envelope);
      else await this.host.receive(envelope);
    } catch (error) {
      if (error instanceof EdgewiseError && error.code === "unavailable") {
        this.pool.push({ envelope, copies: 1, dueAt: this.steps + 1 });
        return;
      }
      throw error;
    }
  }

  ask = async <T>(type: string, key: string, message: string, data: unknown = {}): Promise<T> =>
    (await this.host.ask({ type, key }, message, data)).reply as T;

  order = (orderId: string) => this.ask<OrderView>("order", orderId, "Get");
  points = async (customerId: string) =>
    (await this.ask<{ points: number }>("loyalty", customerKey(customerId), "Get")).points;
  /** A sku's state; one no message ever reached has none, and holds nothing. */
  stock = (sku: string): InventoryState =>
    (this.host.inspect({ type: "inventory", key: sku }).state as InventoryState | null) ??
    inventoryActor.initial(sku);
  stockRecord = (sku: string, orderId: string) =>
    this.host.store.kvGet(`inventory/${sku}`, `order:${orderId}`) as OrderRecord | undefined;

  /** An inbound `inventory.restocked` webhook, queued as the gateway queues it (its id fixed by the webhook's). */
  restock(sku: string, quantity: number, webhookId: string): void {
    this.enqueue(
      createEnvelope({
        id: `whin_${webhookId}`,
        type: "Restock",
        source: "edgewise://webhooks/inbound/supplier",
        target: `inventory/${sku}`,
        data: { sku, quantity, source: "supplier" },
      }),
    );
  }
}

/** A SQLite file for one schedule in `dir`. */
export const worldFile = (dir: string, run: number) => join(dir, `actors-${run}.db`);
