// A SpanProcessor that batches finished spans into the embedded TraceStore (bounded buffer, periodic flush).
import type { Context } from "@opentelemetry/api";
import type { ReadableSpan, Span, SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { kindName, type StoredSpan, statusName, type TraceStore } from "./store.ts";

export interface TraceStoreProcessorOptions {
  /** How long finished spans wait before a batched write. Default 250 ms. */
  flushIntervalMs?: number;
  /** Spans buffered at most; past it new spans are dropped (and counted). Default 5 000. */
  maxBuffered?: number;
  onError?: (error: unknown) => void;
}

const hrToMs = (time: [number, number]): number => time[0] * 1000 + time[1] / 1e6;

export function toStoredSpan(span: ReadableSpan): StoredSpan {
  const context = span.spanContext();
  const stored: StoredSpan = {
    traceId: context.traceId,
    spanId: context.spanId,
    name: span.name,
    kind: kindName(span.kind),
    startMs: hrToMs(span.startTime),
    durationMs: hrToMs(span.duration),
    status: statusName(span.status.code),
    attributes: { ...span.attributes },
    links: span.links.map((link) => ({
      traceId: link.context.traceId,
      spanId: link.context.spanId,
      ...(link.attributes ? { attributes: { ...link.attributes } } : {}),
    })),
  };
  const parent = span.parentSpanContext;
  if (parent) stored.parentSpanId = parent.spanId;
  if (span.status.message) stored.statusMessage = span.status.message;
  if (span.events.length > 0) {
    stored.events = span.events.map((event) => ({
      name: event.name,
      timeMs: hrToMs(event.time),
      ...(event.attributes ? { attributes: { ...event.attributes } } : {}),
    }));
  }
  return stored;
}

export class TraceStoreProcessor implements SpanProcessor {
  private buffer: StoredSpan[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Spans dropped because the buffer was full. */
  dropped = 0;
  private readonly flushIntervalMs: number;
  private readonly maxBuffered: number;

  constructor(
    private readonly store: TraceStore,
    private readonly options: TraceStoreProcessorOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 250;
    this.maxBuffered = options.maxBuffered ?? 5_000;
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.closed) return;
    if (this.buffer.length >= this.maxBuffered) {
      this.dropped++;
      return;
    }
    this.buffer.push(toStoredSpan(span));
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flushNow(), this.flushIntervalMs);
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Writes what is buffered now. */
  flushNow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    if (batch.length === 0) return;
    this.buffer = [];
    try {
      this.store.write(batch);
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  forceFlush(): Promise<void> {
    this.flushNow();
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.flushNow();
    this.closed = true;
    return Promise.resolve();
  }
}
