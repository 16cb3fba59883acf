// Trace SDK wiring for the Bun and Deno entries: one process-wide provider (AsyncLocalStorage context, W3C
// propagation), OTLP/HTTP export when OTEL_EXPORTER_OTLP_ENDPOINT is set, and each node's embedded trace store.
//
// Workers: wired in actors/hosts/cloudflare/tracing.ts (the same SDK, an isolate-wide provider, OTLP/JSON over fetch
// flushed in waitUntil, no embedded store), installed by the Worker entry and every actor Durable Object when the
// Worker has OTEL_EXPORTER_OTLP_ENDPOINT; without it, every span the shared code makes stays the API's no-op.
import { join } from "node:path";
import { type Context, context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { SqlDatabase } from "../actors/hosts/local/sql.ts";
import type { ConsoleTraces } from "../edge/console/types.ts";
import { otlpResource } from "../shared/telemetry/otlp-env.ts";
import { TraceStoreProcessor } from "../shared/telemetry/trace/processor.ts";
import {
  defaultReadSampling,
  defaultWriteSampling,
  type ReadSampling,
  readSamplingSetting,
  sampleReads,
  sampleWrites,
  type TraceSampling,
  tracingSetting,
  writeSamplingSetting,
} from "../shared/telemetry/trace/sampling.ts";
import { TraceStore, type TraceStoreOptions } from "../shared/telemetry/trace/store.ts";

/** Spans go to every attached processor: each node in the process attaches its own trace store. */
class FanoutProcessor implements SpanProcessor {
  /** A copy made on change, so a span's start and end walk a plain array. */
  private list: SpanProcessor[] = [];
  add(processor: SpanProcessor): void {
    if (!this.list.includes(processor)) this.list = [...this.list, processor];
  }
  delete(processor: SpanProcessor): void {
    this.list = this.list.filter((attached) => attached !== processor);
  }
  onStart(span: Span, parent: Context): void {
    for (const processor of this.list) processor.onStart(span, parent);
  }
  onEnd(span: ReadableSpan): void {
    for (const processor of this.list) processor.onEnd(span);
  }
  async forceFlush(): Promise<void> {
    await Promise.all(this.list.map((processor) => processor.forceFlush()));
  }
  async shutdown(): Promise<void> {
    await Promise.all(this.list.map((processor) => processor.shutdown()));
  }
}

export { defaultReadSampling, defaultWriteSampling };

/**
 * EDGEWISE_TRACE_SAMPLE_READS: a share from 0 to 1 (`0.1`; `1` records every read) or a rate (`10/s`); default
 * `defaultReadSampling`. Throws on anything else, naming the variable.
 */
export function readSamplingFromEnv(value = env("EDGEWISE_TRACE_SAMPLE_READS")): ReadSampling {
  return readSamplingSetting(value);
}

/**
 * EDGEWISE_TRACE_SAMPLE_WRITES: the same forms, for writes that start a trace (a request that changes something
 * without a caller's `traceparent`, an ask from code); default `defaultWriteSampling`. Throws on anything else.
 */
export function writeSamplingFromEnv(value = env("EDGEWISE_TRACE_SAMPLE_WRITES")): TraceSampling {
  return writeSamplingSetting(value);
}

interface Installed {
  provider: BasicTracerProvider;
  fanout: FanoutProcessor;
}
let installed: Installed | undefined;

function env(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}

/** Off when EDGEWISE_TRACING is `0`, `off`, `false` or `no`; on otherwise (the embedded default). */
export function tracingEnabled(value = env("EDGEWISE_TRACING")): boolean {
  return tracingSetting(value);
}

/** What installTracing reads from the environment, each bad setting refused with `config.invalid` naming it. */
function tracingSettings(serviceName: string) {
  return {
    reads: readSamplingFromEnv(),
    writes: writeSamplingFromEnv(),
    resource: otlpResource(serviceName, env("OTEL_RESOURCE_ATTRIBUTES")),
  };
}

/**
 * Refuses now what installTracing would refuse, writing nothing: a node asks before it makes its data dir. Once
 * the provider is installed, its settings were read then and are not read again, so nothing is asked.
 */
export function checkTracingSettings(serviceName = env("OTEL_SERVICE_NAME") ?? "edgewise"): void {
  if (!installed) tracingSettings(serviceName);
}

/**
 * Registers the process-wide tracer provider once (later calls return the same one). OTLP/HTTP export is added
 * when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; the exporter reads those itself.
 */
export function installTracing(serviceName = env("OTEL_SERVICE_NAME") ?? "edgewise"): Installed {
  if (installed) return installed;
  // A trace's first span is sampled before the SDK (shared/telemetry/trace/sampling.ts), by the policy for reads or
  // for writes; the SDK's own sampler is its default, ParentBased(AlwaysOn) unless OTEL_TRACES_SAMPLER says
  // otherwise: a child follows its parent.
  const { reads, writes, resource } = tracingSettings(serviceName);
  const fanout = new FanoutProcessor();
  const processors: SpanProcessor[] = [fanout];
  if (env("OTEL_EXPORTER_OTLP_ENDPOINT") || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resource),
    spanProcessors: processors,
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  sampleReads(reads);
  sampleWrites(writes);
  installed = { provider, fanout };
  return installed;
}

export interface NodeTracing {
  /** The node's embedded trace store (`traces.db` in the data dir). */
  store: TraceStore;
  /** The store as the console's port (/_console's recent traces and waterfalls). */
  console: ConsoleTraces;
  /** Writes buffered spans to the store now. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export interface NodeTracingOptions extends TraceStoreOptions {
  dataDir: string;
  openDb: (path: string, sync: "FULL" | "NORMAL") => SqlDatabase;
  serviceName?: string;
  /**
   * Told when a batch of spans could not be written (a full disk, say): the node logs it with its logger. Default:
   * one line on stderr.
   */
  onError?: (error: unknown) => void;
}

/** Installs the provider (once) and attaches a trace store in `dataDir` to it. */
export function startNodeTracing(options: NodeTracingOptions): NodeTracing {
  const { provider, fanout } = installTracing(options.serviceName);
  const store = new TraceStore(options.openDb(join(options.dataDir, "traces.db"), "NORMAL"), {
    ...(options.maxSpans !== undefined ? { maxSpans: options.maxSpans } : {}),
  });
  const processor = new TraceStoreProcessor(store, {
    onError:
      options.onError ??
      ((error) =>
        console.error(
          `[edgewise] trace store: a write failed: ${error instanceof Error ? error.message : String(error)}`,
        )),
  });
  fanout.add(processor);
  let stopped = false;
  return {
    store,
    console: consoleTraces(store, processor),
    flush: () => processor.forceFlush(),
    async stop() {
      if (stopped) return;
      stopped = true;
      // The OTLP exporter sends its batch every 5 s: the spans of a node's last seconds (often what an incident
      // that ends in a restart is about) would leave with the process. Bounded, so a collector that is down cannot
      // hold the shutdown.
      await flushWithin(provider, exportFlushMs);
      fanout.delete(processor);
      await processor.shutdown();
      store.close();
    },
  };
}

/** How long a node's stop waits for the exporters to send what they hold. */
const exportFlushMs = 3_000;

async function flushWithin(provider: BasicTracerProvider, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    provider.forceFlush().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** Adapts the store to the console's port; buffered spans are written first, so a fresh trace shows whole. */
export function consoleTraces(store: TraceStore, processor?: TraceStoreProcessor): ConsoleTraces {
  return {
    recentTraces(limit) {
      processor?.flushNow();
      return store.recentTraces(limit).map((summary) => ({
        traceId: summary.traceId,
        name: summary.rootName,
        startTimeMs: summary.startMs,
        durationMs: summary.durationMs,
        spanCount: summary.spanCount,
      }));
    },
    spans(traceId) {
      processor?.flushNow();
      return store.trace(traceId).map((span) => ({
        spanId: span.spanId,
        parentSpanId: span.parentSpanId,
        name: span.name,
        kind: span.kind,
        startTimeMs: span.startMs,
        endTimeMs: span.startMs + span.durationMs,
        status: span.status,
        attributes: span.attributes,
      }));
    },
  };
}
