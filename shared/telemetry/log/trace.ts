// Trace ids for log records: the active OpenTelemetry span when there is one, else a caller's W3C traceparent.
import { isSpanContextValid, trace } from "@opentelemetry/api";

export interface TraceIds {
  trace_id: string;
  span_id?: string;
}

/**
 * The active span's ids. Without a registered SDK (or with one but outside any span) the API answers no span,
 * so this costs one context lookup and returns undefined.
 */
export function activeTraceIds(): TraceIds | undefined {
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const context = span.spanContext();
  return isSpanContextValid(context) ? { trace_id: context.traceId, span_id: context.spanId } : undefined;
}

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const zeros = /^0+$/;

/**
 * The trace id a W3C `traceparent` header names, when it is well formed (version `ff` and all-zero ids are
 * invalid). The header's span id is the caller's span, not one of ours, so it is not returned as `span_id`.
 */
export function traceIdFromTraceparent(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const match = traceparentPattern.exec(header.trim());
  if (!match) return undefined;
  const [, version, traceId, parentId] = match as unknown as [string, string, string, string];
  if (version === "ff" || zeros.test(traceId) || zeros.test(parentId)) return undefined;
  return traceId;
}
