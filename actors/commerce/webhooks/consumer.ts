// The `webhooks` MessageConsumer: `webhooks/outbound` fans events out, `webhooks/{subscriptionId}` delivers.
import * as v from "valibot";
import { systemClock } from "../../../shared/clock/index.ts";
import { type Envelope, parseEnvelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import type { MessageConsumer } from "../../runtime/consumers.ts";
import { targetOf } from "../../runtime/host.ts";
import type { Transport } from "../../runtime/transport.ts";
import { Participants } from "../messages.ts";
import { type DeliveryOptions, deliver } from "./delivery.ts";
import { fanOut } from "./fan-out.ts";
import { OUTBOUND_KEY, WEBHOOK_DELIVERY, WebhookDelivery } from "./messages.ts";
import type { Resolve } from "./ssrf.ts";
import type { WebhookStore } from "./store.ts";

export interface WebhooksConsumerOptions
  extends Partial<Pick<DeliveryOptions, "clock" | "timeoutMs" | "userAgent" | "guard" | "post">> {
  store: WebhookStore;
  /** Where `webhooks/outbound` sends the per-subscription deliveries: the queue. */
  transport: Transport;
  /** The DNS port for the SSRF guard. */
  resolve: Resolve;
  /** WEBHOOKS_ALLOW_PRIVATE=1. */
  allowPrivate?: boolean;
}

export function webhooksConsumer(options: WebhooksConsumerOptions): MessageConsumer {
  const delivery: DeliveryOptions = {
    store: options.store,
    policy: { resolve: options.resolve, allowPrivate: options.allowPrivate ?? false },
    clock: options.clock ?? systemClock,
    timeoutMs: options.timeoutMs,
    userAgent: options.userAgent,
    guard: options.guard,
    post: options.post,
  };
  return {
    type: Participants.webhooks,
    async receive(input: Envelope) {
      // Consumers get the envelope as it came off the wire: validate it here, as the actor host would.
      const envelope = parseEnvelope(input);
      const { key } = targetOf(envelope);
      if (key === OUTBOUND_KEY) return fanOut(options, envelope);
      if (envelope.type !== WEBHOOK_DELIVERY) {
        throw new EdgewiseError("message.unknown_type", `webhooks/${key} only takes ${WEBHOOK_DELIVERY}`);
      }
      const parsed = v.safeParse(WebhookDelivery, envelope.data);
      if (!parsed.success)
        throw validationError("message.invalid", `${WEBHOOK_DELIVERY} message`, parsed.issues);
      if (parsed.output.subscriptionId !== key) {
        throw new EdgewiseError(
          "message.invalid",
          `${WEBHOOK_DELIVERY} for another subscription than ${key}`,
        );
      }
      return deliver(delivery, parsed.output);
    },
  };
}
