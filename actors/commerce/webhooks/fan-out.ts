// `webhooks/outbound`: one domain event in, one WebhookDelivery per matching subscription out, via the queue.
import type { Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { activeContext, producerSpan, trace } from "../../../shared/telemetry/trace/index.ts";
import { maxMessageBytes } from "../../runtime/context.ts";
import type { Transport } from "../../runtime/transport.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import { deliveryEnvelope, type WebhookDelivery, webhookEventName } from "./messages.ts";
import type { WebhookStore } from "./store.ts";

export interface FanOutOptions {
  store: Pick<WebhookStore, "pageSubscriptions" | "listAttempts" | "recordAttempt">;
  transport: Transport;
}

/**
 * Subscriptions read, and their deliveries built and handed to the transport, at a time. A `webhooks:admin` caller
 * may create any number of subscriptions, and the fan-out once read them all and built every delivery (each a copy
 * of the event) before sending any: 50,000 subscriptions held 50,000 envelopes at once, per event being fanned out.
 */
export const fanOutPageSize = 256;

/**
 * Resolves only once the transport has durably accepted every delivery. A redelivered event sends the same
 * deterministic ids again, which the broker and the inboxes deduplicate; a subscription created in between
 * also gets it.
 *
 * Subscriptions are read a page at a time (`fanOutPageSize`, oldest first), and each page's deliveries are sent
 * before the next page is read, so what a fan-out holds does not grow with the subscriptions. A send that fails
 * fails the fan-out; the queue redelivers the event, and the pages already sent are sent again, deduplicated.
 *
 * A delivery the queue would refuse (the event plus the wrapper over `maxMessageBytes`) is not sent: the queue
 * would answer 413 on every retry, no subscriber would get the event, and the fan-out would be dead-lettered. Each
 * such subscription gets a failed attempt in its log instead (the deliveries of one event differ in size only by
 * their trace context, so in practice all or none are too large), and the fan-out succeeds.
 */
export async function fanOut(options: FanOutOptions, event: Envelope): Promise<TurnOutcome> {
  const name = webhookEventName(event.type);
  if (name === undefined) {
    throw new EdgewiseError("message.unknown_type", `webhooks/outbound has no webhook for "${event.type}"`);
  }
  let size: ((delivery: Envelope) => number) | undefined;
  let sent = 0;
  let tooLarge = 0;
  let after: string | undefined;
  for (;;) {
    const page = await options.store.pageSubscriptions({
      event: name,
      limit: fanOutPageSize,
      ...(after === undefined ? {} : { after }),
    });
    const deliveries = await Promise.all(
      page.map((subscription) => deliveryEnvelope(event, subscription.id)),
    );
    // The deliveries of one event differ only in their ids and trace context: measured from the first one.
    if (deliveries[0]) size ??= deliverySize(deliveries[0]);
    const outcome = await sendPage(options, event, deliveries, size);
    sent += outcome.sent;
    tooLarge += outcome.tooLarge;
    const last = page.at(-1);
    if (page.length < fanOutPageSize || last === undefined) break;
    after = last.id;
  }
  return {
    duplicate: false,
    reply: { event: name, deliveries: sent, ...(tooLarge > 0 ? { tooLarge } : {}) },
  };
}

/** Sends one page's deliveries, and logs a failed attempt for each the queue would refuse as too large. */
async function sendPage(
  options: FanOutOptions,
  event: Envelope,
  deliveries: Envelope[],
  size: ((delivery: Envelope) => number) | undefined,
): Promise<{ sent: number; tooLarge: number }> {
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
  const sendable: Envelope[] = [];
  const tooLarge: Array<{ subscriptionId: string; bytes: number }> = [];
  for (const delivery of deliveries) {
    const bytes = size?.(delivery) ?? 0;
    if (bytes <= maxMessageBytes) sendable.push(delivery);
    else tooLarge.push({ subscriptionId: (delivery.data as WebhookDelivery).subscriptionId, bytes });
  }
  if (sendable.length > 0) await options.transport.send(sendable);
  for (const { subscriptionId, bytes } of tooLarge) {
    // Once per event and subscription: a redelivered fan-out (its send failed, or its answer was lost) finds it.
    if ((await options.store.listAttempts(subscriptionId, event.id)).length > 0) continue;
    await options.store.recordAttempt({
      subscriptionId,
      eventId: event.id,
      outcome: "failed",
      statusCode: null,
      error: `event too large for a webhook delivery: ${bytes} bytes, limit ${maxMessageBytes}`,
    });
  }
  return { sent: sendable.length, tooLarge: tooLarge.length };
}

/**
 * Measures the deliveries of one event as the queue's body (their JSON in UTF-8). They differ only in the
 * subscription id, always 22 ASCII characters (messages.ts), and in the trace context, so `first` is stringified
 * once without its trace context and each delivery adds its own: a 1 MiB event is not stringified once a
 * subscription. Below a third of the limit in UTF-16 units nothing is encoded (UTF-8 takes at most 3 bytes a unit).
 */
function deliverySize(first: Envelope): (delivery: Envelope) => number {
  const { traceparent: _parent, tracestate: _state, ...untraced } = first;
  const text = JSON.stringify(untraced);
  let bytes: number | undefined;
  return (delivery) => {
    const trace = traceMembers(delivery);
    // Fits whatever its characters are; the units are then a lower bound of its bytes, used only to compare.
    if ((text.length + trace.length) * 3 <= maxMessageBytes) return text.length + trace.length;
    bytes ??= new TextEncoder().encode(text).byteLength;
    return bytes + new TextEncoder().encode(trace).byteLength;
  };
}

function traceMembers(delivery: Envelope): string {
  let members = "";
  if (delivery.traceparent !== undefined) members += `,"traceparent":${JSON.stringify(delivery.traceparent)}`;
  if (delivery.tracestate !== undefined) members += `,"tracestate":${JSON.stringify(delivery.tracestate)}`;
  return members;
}
