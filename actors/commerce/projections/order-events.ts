// The order events the read side consumes, validated from an envelope into one tagged union.
import * as v from "valibot";
import type { Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import {
  EventTypes,
  OrderCancelled,
  OrderConfirmed,
  OrderPlaced,
  OrderRefunded,
  OrderRejected,
} from "../messages.ts";

export type OrderEvent =
  | { type: "OrderPlaced"; data: v.InferOutput<typeof OrderPlaced> }
  | { type: "OrderConfirmed"; data: v.InferOutput<typeof OrderConfirmed> }
  | { type: "OrderRejected"; data: v.InferOutput<typeof OrderRejected> }
  | { type: "OrderCancelled"; data: v.InferOutput<typeof OrderCancelled> }
  | { type: "OrderRefunded"; data: v.InferOutput<typeof OrderRefunded> };

const schemas = {
  [EventTypes.OrderPlaced]: OrderPlaced,
  [EventTypes.OrderConfirmed]: OrderConfirmed,
  [EventTypes.OrderRejected]: OrderRejected,
  [EventTypes.OrderCancelled]: OrderCancelled,
  [EventTypes.OrderRefunded]: OrderRefunded,
} as const;

export const orderEventTypes: readonly string[] = Object.keys(schemas);

export function isOrderEventType(type: string): type is OrderEvent["type"] {
  return Object.hasOwn(schemas, type);
}

/** The envelope's data checked against its event's schema: `message.invalid` or `message.unknown_type` otherwise. */
export function parseOrderEvent(envelope: Envelope, consumer: string): OrderEvent {
  const { type } = envelope;
  if (!isOrderEventType(type)) {
    throw new EdgewiseError("message.unknown_type", `${consumer} has no handler for "${type}"`);
  }
  const result = v.safeParse(schemas[type], envelope.data);
  if (!result.success) throw validationError("message.invalid", `${type} message`, result.issues);
  return { type, data: result.output } as OrderEvent;
}
