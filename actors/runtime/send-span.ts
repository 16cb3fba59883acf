// The relay's publish on a message's trace: a CLIENT span `send <type>` per sampled message, for the call that sent it.
import type { Envelope } from "../../shared/envelope/index.ts";
import {
  contextFromTraceparent,
  failSpan,
  type Span,
  SpanKind,
  SpanStatusCode,
  tracer,
} from "../../shared/telemetry/trace/index.ts";
import type { Transport } from "./transport.ts";

/** A traceparent whose flags have the sampled bit (the last hex digit odd), read without parsing the rest. */
const sampled = (traceparent: unknown): traceparent is string =>
  typeof traceparent === "string" && "13579bdfBDF".includes(traceparent.charAt(traceparent.length - 1));

/**
 * Sends `envelopes` as `transport.send` does. Each message of a recorded trace gets a span for the call, a child of
 * the PRODUCER span that created it (its envelope's `traceparent`), so a trace shows when its message left the outbox
 * (the gap after `create`: the relay's lag) and how long the queue took to take it; failed when the call fails. OTel's
 * messaging conventions make a send CLIENT when creation has spans of its own. Messages of dropped or untraced work
 * get none, and cost a character's check each.
 */
export async function sendTraced(transport: Transport, envelopes: Envelope[]): Promise<void> {
  let spans: Span[] | undefined;
  for (const envelope of envelopes) {
    if (!sampled(envelope.traceparent)) continue;
    const parent = contextFromTraceparent(envelope.traceparent, envelope.tracestate);
    spans ??= [];
    spans.push(
      tracer().startSpan(
        `send ${envelope.type}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            "messaging.system": "edgewise",
            "messaging.operation.type": "send",
            "messaging.message.id": envelope.id,
            "messaging.batch.message_count": envelopes.length,
            "edgewise.message.type": envelope.type,
            ...(envelope.target ? { "messaging.destination.name": envelope.target } : {}),
          },
        },
        parent,
      ),
    );
  }
  if (!spans) return await transport.send(envelopes);
  try {
    await transport.send(envelopes);
    for (const span of spans) span.setStatus({ code: SpanStatusCode.OK });
  } catch (error) {
    for (const span of spans) failSpan(span, error);
    throw error;
  } finally {
    for (const span of spans) span.end();
  }
}
