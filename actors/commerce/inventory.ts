// The inventory actor, one per sku: stock levels and price; reserves, sells and releases units per order.
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { defineActor, type TurnContext } from "../runtime/index.ts";
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

/** How an order's story ended at this sku, remembered so a late or repeated event never reserves again. */
const Closed = v.picklist(["refused", "released", "returned"]);

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
  /** Open reservations: orderId → units. */
  reservations: v.record(v.string(), units),
  /** Confirmed sales not returned: orderId → units. */
  sales: v.record(v.string(), units),
  closed: v.record(v.string(), Closed),
});
export type InventoryState = v.InferOutput<typeof InventoryState>;

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

type Turn = TurnContext<InventoryState>;

export const inventoryActor = defineActor({
  type: Participants.inventory,
  state: InventoryState,
  initial: () => ({
    exists: false,
    available: 0,
    reserved: 0,
    sold: 0,
    priceCents: 0,
    stocked: 0,
    version: 0,
    reservations: {},
    sales: {},
    closed: {},
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
    Put(ctx, data): StockView {
      if (!v.is(Sku, ctx.key))
        throw new EdgewiseError("request.invalid", "a sku is 1-128 URL-safe characters");
      const stock = ctx.state;
      if (stock.exists && stock.available === data.available && stock.priceCents === data.priceCents) {
        return view(ctx);
      }
      stock.stocked += data.available - stock.available;
      stock.available = data.available;
      stock.priceCents = data.priceCents;
      stock.exists = true;
      changed(ctx);
      return view(ctx);
    },

    Get(ctx): StockView {
      if (!ctx.state.exists) throw new EdgewiseError("not_found", `sku ${ctx.key} was never set`);
      return view(ctx);
    },

    /** Units count at once; a sku never `Put` keeps them but stays unsellable until it has a price. */
    Restock(ctx, data) {
      ctx.state.available += data.quantity;
      ctx.state.stocked += data.quantity;
      changed(ctx);
    },

    OrderPlaced(ctx, data) {
      const stock = ctx.state;
      const { orderId } = data;
      if (knows(stock, orderId)) return;
      const quantity = data.items
        .filter((line) => line.sku === ctx.key)
        .reduce((sum, line) => sum + line.quantity, 0);
      if (quantity === 0) return;
      const order = { type: Participants.order, key: orderId };
      if (!stock.exists || stock.available < quantity) {
        stock.closed[orderId] = "refused";
        const refusal: v.InferInput<typeof StockRejected> = {
          orderId,
          sku: ctx.key,
          quantity,
          available: stock.available,
        };
        ctx.send(order, "StockRejected", refusal);
        return;
      }
      stock.available -= quantity;
      stock.reserved += quantity;
      stock.reservations[orderId] = quantity;
      const reservation: v.InferInput<typeof StockReserved> = {
        orderId,
        sku: ctx.key,
        quantity,
        unitPriceCents: stock.priceCents,
      };
      ctx.send(order, "StockReserved", reservation);
      changed(ctx);
    },

    OrderConfirmed(ctx, data) {
      const stock = ctx.state;
      const quantity = own(stock.reservations, data.orderId);
      if (quantity === undefined) return;
      delete stock.reservations[data.orderId];
      stock.reserved -= quantity;
      stock.sold += quantity;
      stock.sales[data.orderId] = quantity;
      changed(ctx);
    },

    OrderRejected(ctx, data) {
      if (own(ctx.state.sales, data.orderId) !== undefined) return;
      close(ctx, data.orderId, "released");
    },

    /** Sold units come back to `available`; an unconfirmed order only loses its reservation. */
    OrderCancelled(ctx, data) {
      const stock = ctx.state;
      const sold = own(stock.sales, data.orderId);
      if (sold === undefined) {
        close(ctx, data.orderId, "released");
        return;
      }
      delete stock.sales[data.orderId];
      stock.sold -= sold;
      stock.available += sold;
      stock.closed[data.orderId] = "returned";
      changed(ctx);
    },
  },
});

function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function knows(stock: InventoryState, orderId: string): boolean {
  return [stock.reservations, stock.sales, stock.closed].some((record) => Object.hasOwn(record, orderId));
}

/** Ends an order's story here: releases its reservation, if any, and remembers it is over. */
function close(ctx: Turn, orderId: string, how: v.InferOutput<typeof Closed>): void {
  const stock = ctx.state;
  if (own(stock.closed, orderId) === undefined) stock.closed[orderId] = how;
  const quantity = own(stock.reservations, orderId);
  if (quantity === undefined) return;
  delete stock.reservations[orderId];
  stock.reserved -= quantity;
  stock.available += quantity;
  changed(ctx);
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
