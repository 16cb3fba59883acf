// The inventory actor, one per sku: stock levels and price; reserves, sells and releases units per order.
//
// State holds counters only, so what a turn clones, validates and writes does not grow with the orders the sku
// has seen. What each order did here is one kv record, `order:{orderId}` → `{ stage, quantity }`, read and
// written with the turn (the actor's own kv, so any valid order id is a safe key):
//   (none) → reserved | refused | released;   reserved → sold | released;   sold → returned.
//
// Version 1 kept those records in state (`reservations`, `sales`, `closed`). A migration cannot write kv, so
// migration 2 turns them into the same records in a `legacy` map in state. Handlers read kv first and `legacy`
// second; each order event moves up to `legacyMovesPerTurn` (order-records.ts) of them to kv with its own commit, and writing an
// order's record removes its legacy one, so `legacy` drains and is dropped once empty. Nothing is lost, and an
// old sku is back to constant-size state after a few hundred orders.
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { defineActor, type TurnContext } from "../runtime/index.ts";
import { orderRecords } from "./order-records.ts";
import {
  EventTypes,
  OrderCancelled,
  OrderConfirmed,
  OrderPlaced,
  OrderRejected,
  Participants,
  Restock,
  Sku,
  type StockChanged,
  type StockRejected,
  type StockReserved,
} from "./messages.ts";

const units = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));

/**
 * Where an order's story stands at this sku. `reserved` counts in `reserved`, `sold` in `sold`; `refused`,
 * `released` and `returned` are final, so a late or repeated event never reserves again.
 */
const Stage = v.picklist(["reserved", "sold", "refused", "released", "returned"]);
/**
 * One order at this sku, in kv under `order:{orderId}`. `quantity`: the units it holds, or held. `unitPriceCents`:
 * the price it reserved at, which an answer sent again repeats (absent on records written before it was kept, and
 * once the story has moved past `reserved`).
 */
export const OrderRecord = v.object({ stage: Stage, quantity: units, unitPriceCents: v.optional(units) });
export type OrderRecord = v.InferOutput<typeof OrderRecord>;

export const InventoryState = v.object({
  /** False until the first `Put`: an unpriced sku refuses every order. */
  exists: v.boolean(),
  available: units,
  reserved: units,
  sold: units,
  priceCents: units,
  /** Everything ever set by `Put` or restocked: `available + reserved + sold === stocked`, always. */
  stocked: units,
  version: units,
  /** Version 1's per-order records, orderId → record, not yet moved to kv; absent once all moved. */
  legacy: v.optional(v.record(v.string(), OrderRecord)),
});
export type InventoryState = v.InferOutput<typeof InventoryState>;

/** State as version 1 stored it: the per-order records lived in state. */
interface InventoryStateV1 {
  reservations?: Record<string, number>;
  sales?: Record<string, number>;
  closed?: Record<string, "refused" | "released" | "returned">;
  [counter: string]: unknown;
}

/** How many version-1 records a turn moves from `legacy` to kv (they commit with the turn). */

/** `PUT /v1/inventory/{sku}`: sets `available` absolutely, and the price. */
export const PutStock = v.object({ available: units, priceCents: units });

export interface StockView {
  sku: string;
  available: number;
  reserved: number;
  sold: number;
  priceCents: number;
  version: number;
}

/**
 * What `Put` answers: the sku as set, and the stock and price it replaced, read in the same turn, for the record of
 * who set it. Absent for a sku never set that holds no units; for one a restock gave units before any `Put`, the units
 * only (it had no price: its state's 0 is not one).
 */
export interface StockSet extends StockView {
  previous?: { available: number; priceCents?: number };
}

type Turn = TurnContext<InventoryState>;

export const inventoryActor = defineActor({
  type: Participants.inventory,
  state: InventoryState,
  version: 2,
  migrations: { 2: fromVersion1 },
  initial: () => ({
    exists: false,
    available: 0,
    reserved: 0,
    sold: 0,
    priceCents: 0,
    stocked: 0,
    version: 0,
  }),
  messages: {
    Put: PutStock,
    Get: v.object({}),
    Restock,
    OrderPlaced,
    OrderConfirmed,
    OrderRejected,
    OrderCancelled,
  },
  handlers: {
    Put(ctx, data): StockSet {
      if (!v.is(Sku, ctx.key))
        throw new EdgewiseError("request.invalid", "a sku is 1-128 URL-safe characters");
      const stock = ctx.state;
      // A sku never set may still hold units (a restock webhook for it came first): what it replaces is said too.
      const previous = stock.exists
        ? { available: stock.available, priceCents: stock.priceCents }
        : stock.available > 0
          ? { available: stock.available }
          : undefined;
      const set = () => ({ ...view(ctx), ...(previous ? { previous } : {}) });
      if (stock.exists && stock.available === data.available && stock.priceCents === data.priceCents) {
        return set();
      }
      stock.stocked += data.available - stock.available;
      stock.available = data.available;
      stock.priceCents = data.priceCents;
      stock.exists = true;
      changed(ctx);
      return set();
    },

    Get(ctx): StockView {
      if (!ctx.state.exists) throw neverSet(ctx.key, ctx.state);
      return view(ctx);
    },

    /** Units count at once; a sku never `Put` keeps them but stays unsellable until it has a price. */
    Restock(ctx, data) {
      ctx.state.available += data.quantity;
      ctx.state.stocked += data.quantity;
      changed(ctx);
    },

    /** Reserves at most once per order: any record, even a release that overtook the placement, stops it. */
    async OrderPlaced(ctx, data) {
      const stock = ctx.state;
      const { orderId } = data;
      const known = await recordOf(ctx, orderId);
      if (known !== undefined) {
        // The order heard nothing (its nudge sent OrderPlaced again): answer again as the first time. Past
        // reserved or refused, the order has moved on and needs no answer.
        // The price is the one it reserved at: a Put in between must not change what an order pays by which of
        // the two answers reaches it first.
        if (known.stage === "reserved") answerReserved(ctx, orderId, known.quantity, known.unitPriceCents);
        else if (known.stage === "refused") answerRefused(ctx, orderId, known.quantity);
        return;
      }
      const quantity = data.items
        .filter((line) => line.sku === ctx.key)
        .reduce((sum, line) => sum + line.quantity, 0);
      if (quantity === 0) return;
      if (!stock.exists || stock.available < quantity) {
        record(ctx, orderId, { stage: "refused", quantity });
        answerRefused(ctx, orderId, quantity);
        return;
      }
      stock.available -= quantity;
      stock.reserved += quantity;
      record(ctx, orderId, { stage: "reserved", quantity, unitPriceCents: stock.priceCents });
      answerReserved(ctx, orderId, quantity, stock.priceCents);
      changed(ctx);
    },

    async OrderConfirmed(ctx, data) {
      const stock = ctx.state;
      const held = await recordOf(ctx, data.orderId);
      if (held?.stage !== "reserved") return;
      stock.reserved -= held.quantity;
      stock.sold += held.quantity;
      record(ctx, data.orderId, { stage: "sold", quantity: held.quantity });
      changed(ctx);
    },

    async OrderRejected(ctx, data) {
      const held = await recordOf(ctx, data.orderId);
      if (held?.stage === "sold") return;
      release(ctx, data.orderId, held);
    },

    /** Sold units come back to `available`; an unconfirmed order only loses its reservation. */
    async OrderCancelled(ctx, data) {
      const stock = ctx.state;
      const held = await recordOf(ctx, data.orderId);
      if (held?.stage !== "sold") {
        release(ctx, data.orderId, held);
        return;
      }
      stock.sold -= held.quantity;
      stock.available += held.quantity;
      record(ctx, data.orderId, { stage: "returned", quantity: held.quantity });
      changed(ctx);
    },
  },
});

/** Per-order records in kv (version-1 ones still in state move over lazily). */
const records = orderRecords(OrderRecord);
const recordOf = (ctx: Turn, orderId: string) => records.read(ctx, orderId);
const record = (ctx: Turn, orderId: string, value: v.InferOutput<typeof OrderRecord>) =>
  records.write(ctx, orderId, value);

/** Tells the order its units here are reserved, at the price they were reserved at (this sku's price by default). */
function answerReserved(
  ctx: Turn,
  orderId: string,
  quantity: number,
  unitPriceCents = ctx.state.priceCents,
): void {
  const reservation: v.InferInput<typeof StockReserved> = { orderId, sku: ctx.key, quantity, unitPriceCents };
  ctx.send({ type: Participants.order, key: orderId }, "StockReserved", reservation);
}

/** Tells the order this sku cannot supply it, and how many units it has. */
function answerRefused(ctx: Turn, orderId: string, quantity: number): void {
  const refusal: v.InferInput<typeof StockRejected> = {
    orderId,
    sku: ctx.key,
    quantity,
    available: ctx.state.available,
  };
  ctx.send({ type: Participants.order, key: orderId }, "StockRejected", refusal);
}

/** Ends an order's story here: releases its reservation, if any; a story already over keeps its ending. */
function release(ctx: Turn, orderId: string, held: OrderRecord | undefined): void {
  if (held === undefined) {
    record(ctx, orderId, { stage: "released", quantity: 0 });
    return;
  }
  if (held.stage !== "reserved") return;
  const stock = ctx.state;
  stock.reserved -= held.quantity;
  stock.available += held.quantity;
  record(ctx, orderId, { stage: "released", quantity: held.quantity });
  changed(ctx);
}

/**
 * What `Get` answers for a sku never `Put`: not_found, naming restocked units that wait for a price (they are kept,
 * and counted in `stocked`: say so rather than hide them). The gateway answers the same, activating none, from the
 * initial state for a sku the host says has none (an ask `onlyIfState` answered `noState`).
 */
export function neverSet(sku: string, state: Pick<InventoryState, "available">): EdgewiseError {
  const waiting = state.available;
  const held = waiting > 0 ? `; ${waiting} restocked units wait for a PUT with its price` : "";
  return new EdgewiseError("not_found", `sku ${sku} was never set${held}`);
}

/** Version 1 → 2: the per-order records leave state for `legacy` (see the header), counters stay. */
function fromVersion1(previous: unknown): unknown {
  const { reservations = {}, sales = {}, closed = {}, ...counters } = previous as InventoryStateV1;
  const legacy = new Map<string, OrderRecord>();
  // At most one of the three holds an order; were it more, the units it still holds win.
  for (const [orderId, stage] of Object.entries(closed)) legacy.set(orderId, { stage, quantity: 0 });
  for (const [orderId, quantity] of Object.entries(sales)) legacy.set(orderId, { stage: "sold", quantity });
  for (const [orderId, quantity] of Object.entries(reservations)) {
    legacy.set(orderId, { stage: "reserved", quantity });
  }
  return legacy.size === 0 ? counters : { ...counters, legacy: Object.fromEntries(legacy) };
}

function changed(ctx: Turn): void {
  ctx.state.version += 1;
  const { version, available, reserved, sold, priceCents } = ctx.state;
  const event: v.InferInput<typeof StockChanged> = {
    sku: ctx.key,
    version,
    available,
    reserved,
    sold,
    priceCents,
  };
  ctx.publish(EventTypes.StockChanged, event);
}

function view(ctx: Turn): StockView {
  const { available, reserved, sold, priceCents, version } = ctx.state;
  return { sku: ctx.key, available, reserved, sold, priceCents, version };
}
