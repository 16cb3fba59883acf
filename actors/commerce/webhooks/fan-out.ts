// `webhooks/outbound`: one domain event in, one WebhookDelivery per matching subscription out, via the queue.
import type { Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { activeContext, producerSpan, trace } from "../../../shared/telemetry/trace/index.ts";
import type { Transport } from "../../runtime/transport.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import { deliveryEnvelope, webhookEventName } from "./messages.ts";
import type { WebhookStore } from "./store.ts";

export interface FanOutOptions {
  store: Pick<WebhookStore, "listSubscriptions">;
  transport: Transport;
}

/**
 * Resolves only once the transport has durably accepted every delivery. A redelivered event sends the same
 * deterministic ids again, which the broker and the inboxes deduplicate; a subscription created in between
 * also gets it.
 */
export async function fanOut(options: FanOutOptions, event: Envelope): Promise<TurnOutcome> {
  const name = webhookEventName(event.type);
  if (name === undefined) {
    throw new EdgewiseError("message.unknown_type", `webhooks/outbound has no webhook for "${event.type}"`);
  }
  const subscriptions = await options.store.listSubscriptions({ event: name });
  const deliveries = await Promise.all(
    subscriptions.map((subscription) => deliveryEnvelope(event, subscription.id)),
  );
  // In a trace that records, each delivery gets a PRODUCER span under the fan-out, as an actor's messages do: its
  // attempts are then the fan-out's children, not siblings of every other consumer of the event.
  const active = activeContext();
  if (trace.getSpan(active)?.isRecording()) {
    for (const delivery of deliveries) {
      const produced = producerSpan(active, delivery);
      if (!produced) continue;
      delivery.traceparent = produced.traceparent;
      if (produced.tracestate) delivery.tracestate = produced.tracestate;
      else delete delivery.tracestate;
    }
  }
  if (deliveries.length > 0) await options.transport.send(deliveries);
  return { duplicate: false, reply: { event: name, deliveries: deliveries.length } };
}
