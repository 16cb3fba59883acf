// A SpanProcessor that batches finished spans into the embedded TraceStore (bounded buffer, periodic flush). A span's
// end only appends it to the buffer: converting, serializing and the SQLite write happen at the flush, off the
// request's path (a finished SDK span is not changed any more, so it can be read later).
import type { Context } from "@opentelemetry/api";
import type { ReadableSpan, Span, SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { kindName, type StoredSpan, statusName, type TraceStore } from "./store.ts";

export interface TraceStoreProcessorOptions {
  /** How long finished spans wait before a batched write. Default 250 ms. */
  flushIntervalMs?: number;
  /** Spans buffered at most; past it new spans are dropped (and counted). Default 5 000. */
  maxBuffered?: number;
  /**
   * Spans a timed write takes at most; the rest follow in the next macrotask, so other work (requests) runs in
   * between and a burst never holds the event loop for one long write. Default 500.
   */
  maxBatch?: number;
  onError?: (error: unknown) => void;
}

const hrToMs = (time: [number, number]): number => time[0] * 1000 + time[1] / 1e6;

/** A finished span as the store keeps it; attributes are read as they are (a finished span no longer changes). */
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
    attributes: span.attributes,
    links: span.links.map((link) => ({
      traceId: link.context.traceId,
      spanId: link.context.spanId,
      ...(link.attributes ? { attributes: link.attributes } : {}),
    })),
  };
  const parent = span.parentSpanContext;
  if (parent) stored.parentSpanId = parent.spanId;
  if (span.status.message) stored.statusMessage = span.status.message;
  if (span.events.length > 0) {
    stored.events = span.events.map((event) => ({
      name: event.name,
      timeMs: hrToMs(event.time),
      ...(event.attributes ? { attributes: event.attributes } : {}),
    }));
  }
  return stored;
}

export class TraceStoreProcessor implements SpanProcessor {
  private buffer: ReadableSpan[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Spans dropped because the buffer was full. */
  dropped = 0;
  private readonly flushIntervalMs: number;
  private readonly maxBuffered: number;
  private readonly maxBatch: number;

  constructor(
    private readonly store: TraceStore,
    private readonly options: TraceStoreProcessorOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 250;
    this.maxBuffered = options.maxBuffered ?? 5_000;
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.closed) return;
    if (this.buffer.length >= this.maxBuffered) {
      this.dropped++;
      return;
    }
    this.buffer.push(span);
    if (this.timer === undefined) this.schedule(this.flushIntervalMs);
  }

  /** Writes what is buffered now, all of it. */
  flushNow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    this.buffer = [];
    this.write(batch);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => this.flushTimed(), delayMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** The timer's write: at most `maxBatch` spans, the rest in the next macrotask. */
  private flushTimed(): void {
    this.timer = undefined;
    if (this.buffer.length <= this.maxBatch) {
      this.flushNow();
      return;
    }
    this.write(this.buffer.splice(0, this.maxBatch));
    if (!this.closed) this.schedule(0);
  }

  private write(batch: ReadableSpan[]): void {
    if (batch.length === 0) return;
    try {
      this.store.write(batch.map(toStoredSpan));
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
