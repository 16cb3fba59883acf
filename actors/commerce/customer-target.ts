// `billing/{key}` and `loyalty/{key}` as an operator knows them (the console's dead letters): the customer served.
import type { ActorAddress } from "../runtime/address.ts";
import { customerIdOfKey } from "./customer-key.ts";
import { Participants } from "./messages.ts";

/**
 * A customer's actor key is `~u.` and the base64url of the customerId when that is not URL-safe (customer-key.ts), so
 * a dead letter for `loyalty/~u.Y2Fmw6k` named no customer an operator knows. The label quotes the customerId as JSON,
 * so spaces at its ends stay visible. Undefined for any other target, or a key no customer has.
 */
export function describeCustomerTarget(target: ActorAddress): { label: string } | undefined {
  if (target.type !== Participants.billing && target.type !== Participants.loyalty) return undefined;
  let customerId: string;
  try {
    customerId = customerIdOfKey(target.key);
  } catch {
    return undefined; // not base64url after `~u.`: no customerKey makes it
  }
  return { label: `${target.type} of customer ${JSON.stringify(customerId)}` };
}
