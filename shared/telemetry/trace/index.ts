// Tracing through `@opentelemetry/api` (tracer `edgewise`): W3C trace context to and from envelopes, and the helpers
// every hop uses. Without a registered SDK every call here is the API's no-op; entries wire the SDK (deploy/tracing.ts).
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
  TraceFlags,
} from "@opentelemetry/api";
import { TraceState } from "@opentelemetry/core";
import { maskSecrets } from "../log/redact.ts";

export { SpanKind, SpanStatusCode, trace };
export type { Attributes, Context, Span, SpanContext };

let cached: Tracer | undefined;
/** The `edgewise` tracer. The API's proxy tracer follows whichever provider is registered later. */
export function tracer(): Tracer {
  cached ??= trace.getTracer("edgewise");
  return cached;
}

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote span context a W3C `traceparent` (and `tracestate`) names; undefined when malformed. */
export function parseTraceparent(
  traceparent: string | undefined,
  tracestate?: string,
): SpanContext | undefined {
  if (!traceparent) return undefined;
  const match = traceparentPattern.exec(traceparent.trim());
  if (!match || match[1] === "ff") return undefined;
  const spanContext: SpanContext = {
    traceId: match[2] as string,
    spanId: match[3] as string,
    traceFlags: Number.parseInt(match[4] as string, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (!isSpanContextValid(spanContext)) return undefined;
  if (tracestate) {
    // Parsed and bounded as W3C asks (32 members, 512 characters; a malformed member is dropped), never kept as it
    // came: it is copied into every message the request leads to, whose envelope holds at most 512 characters.
    spanContext.traceState = new TraceState(tracestate);
  }
  return spanContext;
}

/** `00-traceid-spanid-flags`. */
export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/** A context whose parent is the remote span a traceparent names; `base` (default: root) when there is none. */
export function contextFromTraceparent(
  traceparent: string | undefined,
  tracestate?: string,
  base: Context = ROOT_CONTEXT,
): Context {
  const spanContext = parseTraceparent(traceparent, tracestate);
  return spanContext ? trace.setSpanContext(base, spanContext) : base;
}

/** The context that carried a message: the envelope's traceparent, as a link (OTel messaging: creation context). */
export function creationLink(envelope: { traceparent?: string; tracestate?: string }): Link | undefined {
  const spanContext = parseTraceparent(envelope.traceparent, envelope.tracestate);
  return spanContext ? { context: spanContext } : undefined;
}

/** True when `ctx` holds a valid span (a recording one or a remote parent). */
export function hasSpan(ctx: Context): boolean {
  const spanContext = trace.getSpanContext(ctx);
  return spanContext !== undefined && isSpanContextValid(spanContext);
}

/**
 * True when a span has a valid context: a recording span, or one a sampler dropped (its context still carries the
 * decision to its children). False for the API's no-op span when no SDK is registered.
 */
/** Whether the span in `ctx` (a caller's, from its traceparent) asks for recording. */
export function isSampled(ctx: Context): boolean {
  return ((trace.getSpanContext(ctx)?.traceFlags ?? 0) & TraceFlags.SAMPLED) !== 0;
}

export function isSpanValid(span: Span): boolean {
  return isSpanContextValid(span.spanContext());
}

/**
 * The span of `ctx` when a sampler dropped it (a valid context that neither records nor is sampled): every span
 * under it would be dropped too (ParentBased), so a caller can run under it instead of starting one.
 */
export function sampledOut(ctx: Context): Span | undefined {
  const span = trace.getSpan(ctx);
  if (!span || span.isRecording()) return undefined;
  const spanContext = span.spanContext();
  return (spanContext.traceFlags & TraceFlags.SAMPLED) === 0 && isSpanContextValid(spanContext)
    ? span
    : undefined;
}

const hexByte = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));
function randomHex(words: number): string {
  let hex = "";
  for (let i = 0; i < words; i++) {
    const word = (Math.random() * 0x100000000) >>> 0;
    hex += `${hexByte[word >>> 24]}${hexByte[(word >>> 16) & 255]}${hexByte[(word >>> 8) & 255]}${hexByte[word & 255]}`;
  }
  return hex;
}

/**
 * A new trace that records nothing (a sampler's "drop" at the head, decided before the SDK): fresh ids with the
 * sampled flag off, so every span under it is dropped too (ParentBased) and the request's log lines have a trace id.
 * Given a trace id (a caller's, whose sampled flag was not honoured), the span keeps it, so logs still correlate.
 */
export function droppedSpan(traceIdToKeep?: string): Span {
  let traceId = traceIdToKeep ?? randomHex(4);
  while (traceId === "00000000000000000000000000000000") traceId = randomHex(4);
  let spanId = randomHex(2);
  while (spanId === "0000000000000000") spanId = randomHex(2);
  return trace.wrapSpanContext({ traceId, spanId, traceFlags: TraceFlags.NONE });
}

/** The W3C headers of a span context: `traceparent`, and `tracestate` when it has one. */
function traceHeaders(spanContext: SpanContext): { traceparent: string; tracestate?: string } {
  const state = spanContext.traceState?.serialize();
  return state
    ? { traceparent: formatTraceparent(spanContext), tracestate: state }
    : { traceparent: formatTraceparent(spanContext) };
}

/** Traceparent and tracestate for a message created under `span`, or undefined when the span does not record. */
export function traceHeadersOf(span: Span): { traceparent: string; tracestate?: string } | undefined {
  if (!span.isRecording()) return undefined;
  const spanContext = span.spanContext();
  return traceHeaders(spanContext);
}

/**
 * The W3C trace context of a span that does not record but belongs to a trace (one a sampler dropped): a message
 * sent under it carries it, so every later hop drops too. Undefined for a recording span (its messages get PRODUCER
 * spans) and for the API's no-op span (no SDK).
 */
export function unsampledHeaders(span: Span): { traceparent: string; tracestate?: string } | undefined {
  if (span.isRecording()) return undefined;
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return undefined;
  return traceHeaders(spanContext);
}

/**
 * The active span's W3C trace context, for the next hop of the same request (an RPC to a Durable Object, an HTTP
 * call to an actor host), whether or not it records: a dropped span's context carries the sampler's decision, so
 * the next hop drops too. Undefined without a valid span (always, without an SDK).
 */
export function activeTraceHeaders(): { traceparent: string; tracestate?: string } | undefined {
  const active = activeContext();
  if (!hasSpan(active)) return undefined;
  const spanContext = trace.getSpanContext(active);
  if (!spanContext) return undefined;
  return traceHeaders(spanContext);
}

/**
 * A PRODUCER span for one message created under `parent` (OTel messaging "create"), ended at once: its context is
 * what the envelope carries. Undefined when nothing records (no SDK): the caller keeps what it had.
 */
export function producerSpan(
  parent: Context,
  message: { id: string; type: string; target?: string },
): { traceparent: string; tracestate?: string } | undefined {
  const span = tracer().startSpan(
    `create ${message.type}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        "messaging.system": "edgewise",
        "messaging.operation.type": "create",
        "messaging.message.id": message.id,
        "edgewise.message.type": message.type,
        ...(message.target ? { "messaging.destination.name": message.target } : {}),
      },
    },
    parent,
  );
  const headers = traceHeadersOf(span);
  span.end();
  return headers;
}

/**
 * Records a thrown error on a span and marks it failed. Its message and stack are masked as a log line's are
 * (`maskSecrets`): spans go to the console's trace store and to OTLP, and an error's text may quote a credential.
 */
export function failSpan(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const message = maskSecrets(error instanceof Error ? error.message : String(error));
  if (error instanceof Error) {
    const { code } = error as { code?: unknown };
    span.recordException({
      name: error.name,
      message,
      ...(typeof code === "string" || typeof code === "number" ? { code } : {}),
      ...(error.stack ? { stack: maskSecrets(error.stack) } : {}),
    });
  }
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/**
 * Runs `work` with `span` active (as a child of `parent`): failed when it throws (`failSpan`), ended either way.
 * `settled` sees the result first, for the attributes only it can tell.
 */
export async function inSpan<T>(
  parent: Context,
  span: Span,
  work: () => Promise<T>,
  settled?: (result: T) => void,
): Promise<T> {
  try {
    const result = await withContext(trace.setSpan(parent, span), work);
    settled?.(result);
    return result;
  } catch (error) {
    failSpan(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** The active context (AsyncLocalStorage on Bun and Deno when the SDK is wired; root otherwise). */
export function activeContext(): Context {
  return context.active();
}

/** Runs `fn` with `ctx` active. */
export function withContext<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}

/** Milliseconds since an envelope's `time` (commit time for queued messages); undefined if unparsable. */
export function ageMs(time: string, now = Date.now()): number | undefined {
  const at = Date.parse(time);
  return Number.isFinite(at) ? Math.max(0, now - at) : undefined;
}
