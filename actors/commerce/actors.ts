// The commerce actors and their subscriptions, in one place for a host to register.
import type { AnyActorDefinition, Subscription } from "../runtime/index.ts";
import { inventoryActor } from "./inventory.ts";
import { loyaltyActor, loyaltySubscriptions } from "./loyalty.ts";
import { orderActor } from "./order.ts";
import { inventorySubscriptions } from "./subscriptions.ts";

export { inventoryActor } from "./inventory.ts";
export { loyaltyActor, loyaltySubscriptions } from "./loyalty.ts";
export { orderActor } from "./order.ts";
export { commerceConsumerSubscriptions, inventorySubscriptions } from "./subscriptions.ts";

export const commerceActors: AnyActorDefinition[] = [orderActor, inventoryActor, loyaltyActor];

/** Subscriptions whose receivers are commerce actors; add `commerceConsumerSubscriptions` for the consumers. */
export const commerceActorSubscriptions: Subscription[] = [
  ...inventorySubscriptions,
  ...loyaltySubscriptions,
];
