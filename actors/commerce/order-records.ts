// One kv record per order in an actor (inventory, loyalty), with version-1 records still in state moved over lazily.
import * as v from "valibot";
import type { Schema, TurnContext } from "../runtime/index.ts";

/** State that may still hold version-1 per-order records, waiting to move to kv. */
export interface WithLegacy<R> {
  legacy?: Record<string, R> | undefined;
}

/** Each turn that reads records moves at most this many version-1 records to kv, in its own commit. */
export const legacyMovesPerTurn = 256;

const keyOf = (orderId: string) => `order:${orderId}`;

/** Reads and writes an actor's per-order records of `schema`. */
export function orderRecords<S extends Schema>(schema: S) {
  type Record_ = v.InferOutput<S>;
  type Turn = TurnContext<WithLegacy<Record_>>;

  /** Moves a bounded batch of version-1 records from state to kv; drops `legacy` once it is empty. */
  const moveLegacy = (ctx: Turn): void => {
    const legacy = ctx.state.legacy;
    if (!legacy) return;
    let moved = 0;
    for (const orderId in legacy) {
      if (moved === legacyMovesPerTurn) return;
      ctx.kv.put(keyOf(orderId), legacy[orderId]);
      delete legacy[orderId];
      moved++;
    }
    delete ctx.state.legacy;
  };

  return {
    /** What the actor knows of an order: its kv record, else a version-1 record not yet moved. */
    async read(ctx: Turn, orderId: string): Promise<Record_ | undefined> {
      moveLegacy(ctx);
      const stored = await ctx.kv.get(keyOf(orderId));
      if (stored !== undefined) return v.parse(schema, stored);
      const legacy = ctx.state.legacy;
      return legacy && Object.hasOwn(legacy, orderId) ? legacy[orderId] : undefined;
    },
    /** Writes an order's record with the turn; a version-1 record of the same order is superseded. */
    write(ctx: Turn, orderId: string, value: Record_): void {
      ctx.kv.put(keyOf(orderId), value);
      const legacy = ctx.state.legacy;
      if (legacy && Object.hasOwn(legacy, orderId)) delete legacy[orderId];
    },
  };
}
