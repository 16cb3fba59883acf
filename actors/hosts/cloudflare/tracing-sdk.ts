// The trace SDK on Workers, loaded only when tracing is on (tracing.ts): the provider, its context and an export buffer.
import { context, propagation, TraceFlags, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { errorFields } from "../../../shared/telemetry/log/redact.ts";
import { type OtlpTarget, postSpans } from "./otlp-json.ts";
import { workerLogger } from "./worker-log.ts";

/** At most this many spans wait for an export; more are dropped (and counted in the next report). */
const maxBuffered = 4096;
const batchSize = 512;
const reportEveryMs = 60_000;

/** Keeps sampled spans until forceFlush() posts them: the only export path, so nothing waits on a timer. */
class BufferingProcessor implements SpanProcessor {
  private spans: ReadableSpan[] = [];
  private dropped = 0;
  private reportedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly target: OtlpTarget) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.spans.length >= maxBuffered) this.dropped++;
    else this.spans.push(span);
  }

  async forceFlush(): Promise<void> {
    while (this.spans.length > 0) {
      const batch = this.spans.splice(0, batchSize);
      try {
        await postSpans(this.target, batch);
      } catch (error) {
        this.dropped += batch.length;
        this.report(error);
      }
    }
  }

  shutdown(): Promise<void> {
    return this.forceFlush();
  }

  /** At most once a minute; names neither the headers nor their values. */
  private report(error: unknown): void {
    const now = Date.now();
    if (now - this.reportedAt < reportEveryMs) return;
    this.reportedAt = now;
    // A warning, as a node's failed trace write is: requests are served all the same. The isolate's logger (its
    // level set by the gateway or object that turned tracing on).
    workerLogger().warn("trace export failed", { dropped: this.dropped, error: errorFields(error) });
  }
}

/**
 * Registers the isolate's provider (AsyncLocalStorage context, W3C propagation, the SDK's default sampler
 * ParentBased(AlwaysOn) as on Bun) and returns the flush that exports what it buffered.
 */
export function installProvider(target: OtlpTarget, resource: Record<string, string>): () => Promise<void> {
  const processor = new BufferingProcessor(target);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      ...resource,
      "cloud.provider": "cloudflare",
      "cloud.platform": "cloudflare.workers",
    }),
    spanProcessors: [processor],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return () => processor.forceFlush();
}
