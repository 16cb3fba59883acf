// OTLP/HTTP JSON for spans on Workers: encodes finished spans as an ExportTraceServiceRequest and POSTs it with fetch.
import { otlpKeyValues } from "../../../shared/telemetry/otlp-env.ts";
import type { Attributes, AttributeValue, HrTime, Link } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";

type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } };

interface KeyValue {
  key: string;
  value: AnyValue;
}

function anyValue(value: AttributeValue | null | undefined): AnyValue | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  if (typeof value === "number") {
    return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  }
  if (Array.isArray(value)) {
    const values = (value as Array<AttributeValue | null | undefined>).map(anyValue);
    return { arrayValue: { values: values.filter((item): item is AnyValue => item !== undefined) } };
  }
  return undefined;
}

function keyValues(attributes: Attributes): KeyValue[] {
  const list: KeyValue[] = [];
  for (const [key, raw] of Object.entries(attributes)) {
    const value = anyValue(raw);
    if (value) list.push({ key, value });
  }
  return list;
}

/** Nanoseconds since the epoch, as a decimal string (OTLP/JSON writes 64-bit integers as strings). */
function nanos([seconds, nanoseconds]: HrTime): string {
  return (BigInt(seconds) * 1_000_000_000n + BigInt(nanoseconds)).toString();
}

function link(entry: Link) {
  const state = entry.context.traceState?.serialize();
  return {
    traceId: entry.context.traceId,
    spanId: entry.context.spanId,
    ...(state ? { traceState: state } : {}),
    attributes: keyValues(entry.attributes ?? {}),
  };
}

function encodeSpan(span: ReadableSpan) {
  const context = span.spanContext();
  const state = context.traceState?.serialize();
  const parent = span.parentSpanContext?.spanId;
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    ...(parent ? { parentSpanId: parent } : {}),
    ...(state ? { traceState: state } : {}),
    flags: context.traceFlags,
    name: span.name,
    // The API's SpanKind starts at INTERNAL = 0; OTLP's at SPAN_KIND_UNSPECIFIED = 0, INTERNAL = 1.
    kind: span.kind + 1,
    startTimeUnixNano: nanos(span.startTime),
    endTimeUnixNano: nanos(span.endTime),
    attributes: keyValues(span.attributes),
    droppedAttributesCount: span.droppedAttributesCount,
    events: span.events.map((event) => ({
      timeUnixNano: nanos(event.time),
      name: event.name,
      attributes: keyValues(event.attributes ?? {}),
    })),
    droppedEventsCount: span.droppedEventsCount,
    links: span.links.map(link),
    droppedLinksCount: span.droppedLinksCount,
    status: { code: span.status.code, ...(span.status.message ? { message: span.status.message } : {}) },
  };
}

/** One ExportTraceServiceRequest: spans grouped by resource, then by instrumentation scope. */
export function encodeSpans(spans: readonly ReadableSpan[]) {
  const resources = new Map<ReadableSpan["resource"], Map<string, ReadableSpan[]>>();
  for (const span of spans) {
    let scopes = resources.get(span.resource);
    if (!scopes) {
      scopes = new Map();
      resources.set(span.resource, scopes);
    }
    const scope = `${span.instrumentationScope.name}@${span.instrumentationScope.version ?? ""}`;
    const list = scopes.get(scope);
    if (list) list.push(span);
    else scopes.set(scope, [span]);
  }
  return {
    resourceSpans: [...resources].map(([resource, scopes]) => ({
      resource: { attributes: keyValues(resource.attributes) },
      scopeSpans: [...scopes.values()].map((list) => {
        const scope = (list[0] as ReadableSpan).instrumentationScope;
        return {
          scope: { name: scope.name, ...(scope.version ? { version: scope.version } : {}) },
          spans: list.map(encodeSpan),
        };
      }),
    })),
  };
}

export interface OtlpTarget {
  /** The traces URL: `${OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is. */
  url: string;
  /** OTEL_EXPORTER_OTLP_HEADERS, parsed: sent with each export and nowhere else (never logged). */
  headers: Record<string, string>;
  timeoutMs: number;
}

/** POSTs the spans as OTLP/JSON; throws with the HTTP status (never the headers) when the collector refuses. */
export async function postSpans(target: OtlpTarget, spans: readonly ReadableSpan[]): Promise<void> {
  const response = await fetch(target.url, {
    method: "POST",
    headers: { ...target.headers, "content-type": "application/json" },
    body: JSON.stringify(encodeSpans(spans)),
    signal: AbortSignal.timeout(target.timeoutMs),
  });
  // Read the body so the connection is released; its content does not matter.
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw new Error(`the OTLP collector answered HTTP ${response.status}`);
}

/** OTEL_EXPORTER_OTLP_HEADERS, parsed as on every runtime (shared/telemetry/otlp-env.ts). */
export function parseOtlpHeaders(text: string | undefined): Record<string, string> {
  return otlpKeyValues("OTEL_EXPORTER_OTLP_HEADERS", text, { headers: true });
}
