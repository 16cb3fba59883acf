// `webhooks/outbound`: one domain event in, one WebhookDelivery per matching subscription out, via the queue.
import * as v from "valibot";
import type { Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import { activeContext, producerSpan, trace } from "../../../shared/telemetry/trace/index.ts";
import { maxMessageBytes } from "../../runtime/context.ts";
import type { Transport } from "../../runtime/transport.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import {
  deliveryEnvelope,
  fanOutEnvelope,
  WEBHOOK_FAN_OUT,
  type WebhookDelivery,
  WebhookFanOut,
  webhookEventName,
} from "./messages.ts";
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
 * Pages one delivery of the fan-out handles (1,024 subscriptions); the rest goes on in a `WebhookFanOut` message to
 * `webhooks/outbound`, which the queue delivers as a request of its own. Each page is a read, and up to three requests
 * to QStash (100 messages a /v2/batch), and a Worker invocation may make 50 subrequests on the Free plan (10,000 by
 * default on Paid): one delivery fanned out to 5,000 subscriptions made 59 requests, so on the Free plan it failed on
 * every retry and the later subscribers never got the event (50,000: 196 reads and 588 requests in one request).
 * Now a delivery makes at most 4 reads and 13 requests to the queue (`fanOutQueueRequests`).
 */
export const fanOutPagesPerDelivery = 4;

/**
 * Resolves only once the transport has durably accepted every delivery of this part of the fan-out, and the message
 * that carries on with the rest (if any). A redelivered event sends the same deterministic ids again, which the broker
 * and the inboxes deduplicate; a subscription created in between also gets it.
 *
 * Subscriptions are read a page at a time (`fanOutPageSize`, oldest first), and each page's deliveries are sent
 * before the next page is read, so what a fan-out holds does not grow with the subscriptions. After
 * `fanOutPagesPerDelivery` pages, a `WebhookFanOut` message (the event and the last subscription sent to) goes to
 * `webhooks/outbound`, and its delivery goes on from there: what one delivery costs does not grow with the
 * subscriptions either. A send that fails fails this part; the queue redelivers it, and the pages already sent are
 * sent again, deduplicated.
 *
 * A delivery the queue would refuse (the event plus the wrapper over `maxMessageBytes`) is not sent: the queue
 * would answer 413 on every retry, no subscriber would get the event, and the fan-out would be dead-lettered. Each
 * such subscription gets a failed attempt in its log instead (the deliveries of one event differ in size only by
 * their trace context, so in practice all or none are too large), and the fan-out succeeds. The continuation carries
 * the same event: when it is too large for the queue, the fan-out goes on in this delivery (sending nothing to the
 * queue, since its deliveries are too large as well).
 */
export async function fanOut(options: FanOutOptions, input: Envelope): Promise<TurnOutcome> {
  const { event, after: from } = fanOutStart(input);
  const name = webhookEventName(event.type);
  if (name === undefined) {
    throw new EdgewiseError("message.unknown_type", `webhooks/outbound has no webhook for "${event.type}"`);
  }
  let size: ((delivery: Envelope) => number) | undefined;
  let sent = 0;
  let tooLarge = 0;
  let after = from;
  let pages = 0;
  let continuesAfter: string | undefined;
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
    pages++;
    const last = page.at(-1);
    if (page.length < fanOutPageSize || last === undefined) break;
    after = last.id;
    if (pages >= fanOutPagesPerDelivery) {
      const rest = await fanOutEnvelope(event, after);
      if (jsonBytesAtMost(rest, maxMessageBytes)) {
        await options.transport.send([rest]);
        continuesAfter = after;
        break;
      }
    }
  }
  return {
    duplicate: false,
    reply: {
      event: name,
      deliveries: sent,
      ...(tooLarge > 0 ? { tooLarge } : {}),
      ...(continuesAfter === undefined ? {} : { continuesAfter }),
    },
  };
}

/**
 * The most requests to the queue one delivery of the fan-out makes: each page's deliveries in /v2/batch requests of
 * at most 100 (`QStashTransport`'s batch), and the continuation.
 */
export const fanOutQueueRequests = fanOutPagesPerDelivery * Math.ceil(fanOutPageSize / 100) + 1;

/** The event a fan-out delivery is for, and the subscription it goes on after (a `WebhookFanOut`), if any. */
function fanOutStart(input: Envelope): { event: Envelope; after?: string } {
  if (input.type !== WEBHOOK_FAN_OUT) return { event: input };
  const parsed = v.safeParse(WebhookFanOut, input.data);
  if (!parsed.success) throw validationError("message.invalid", `${WEBHOOK_FAN_OUT} message`, parsed.issues);
  return { event: parsed.output.event as Envelope, after: parsed.output.after };
}

/** Whether `value` as JSON is at most `limit` bytes of UTF-8 (encoded only when 3 bytes a unit could exceed it). */
function jsonBytesAtMost(value: unknown, limit: number): boolean {
  const text = JSON.stringify(value);
  return text.length * 3 <= limit || new TextEncoder().encode(text).byteLength <= limit;
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
