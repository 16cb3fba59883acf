// Trace SDK wiring on Workers: with OTEL_EXPORTER_OTLP_ENDPOINT, one isolate-wide provider that records the spans the
// shared code makes through @opentelemetry/api and exports them as OTLP/JSON, flushed in waitUntil.
//
// Our own and not `@microlabs/otel-cf-workers` (1.0.0-rc.52 was tried): its bundle does not build under wrangler 4.85
// with our @opentelemetry/semantic-conventions 1.45 (it imports ATTR_FAAS_TIME, gone from it); it brings a second
// SDK (core and sdk-trace-base 2.0.0, exporter 0.200) beside ours (2.12.1, 0.223.1) and spans of its own around every
// handler and global fetch; and it neither propagates context over Durable Object RPC (our ask/receive) nor flushes
// spans made inside RPC methods. Cloudflare's built-in tracing (ctx.tracing) takes no parent, kind or link from us.
// So: the SDK we use on Bun (tracing-sdk.ts, loaded only when tracing is on), and a buffer exported with fetch
// (otlp-json.ts) when a request, an RPC call or an alarm ends. No timers: workerd runs none between requests.
import { EdgewiseError } from "../../../shared/errors/index.ts";
import {
  readSamplingSetting,
  sampleWrites,
  writeSamplingSetting,
  sampleReads,
  tracingSetting,
} from "../../../shared/telemetry/trace/sampling.ts";
import { envReader, otlpResource, otlpSignalUrl } from "../../../shared/telemetry/otlp-env.ts";
import { parseOtlpHeaders } from "./otlp-json.ts";

/** The variables tracing reads (wrangler.toml: the endpoint is a var, the headers a secret). */
export interface TracingEnv {
  /** The collector's base URL; spans go to `${endpoint}/v1/traces`. Unset: no provider, every span a no-op. */
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  /** The full traces URL, used as it is; wins over the endpoint. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;
  /** Secret: `name=value,…` sent with each export (e.g. an API key); never logged, never an attribute. */
  OTEL_EXPORTER_OTLP_HEADERS?: string;
  /** Default `edgewise-worker`. */
  OTEL_SERVICE_NAME?: string;
  /** `key=value,…` on every span's resource, as on the metrics pushed. */
  OTEL_RESOURCE_ATTRIBUTES?: string;
  /** `0` turns tracing off even with an endpoint. */
  EDGEWISE_TRACING?: string;
  /** Reads that start a trace: a rate (`10/s`, the default, per isolate) or a share (`0.1`). */
  EDGEWISE_TRACE_SAMPLE_READS?: string;
  /** Writes that start a trace: a rate (`10/s`, the default, per isolate) or a share (`1` records every one). */
  EDGEWISE_TRACE_SAMPLE_WRITES?: string;
}

export interface WorkerTracing {
  /** Exports every span the isolate buffered so far. Never throws: a failed export is reported and dropped. */
  flush(): Promise<void>;
  /**
   * Runs one request (or cron run) with a ctx whose waitUntil promises are tracked; once they have all settled, in
   * the real ctx's waitUntil, flushes, so the spans of the request's background work are exported with it.
   */
  around<T>(ctx: ExecutionContext, handle: (ctx: ExecutionContext) => Promise<T>): Promise<T>;
}

const exportTimeoutMs = 10_000;

/** Undefined until the first call decides; null when tracing is off for this isolate. */
let decided: Promise<WorkerTracing> | null | undefined;

function text(env: unknown, name: keyof TracingEnv): string | undefined {
  return envReader(env)(name);
}

/**
 * The isolate's tracing, installed by the first call whose env has an OTLP endpoint (and EDGEWISE_TRACING not off)
 * and then shared by every request and Durable Object of the isolate (env is the same for all of them). Undefined
 * without an endpoint: one check, and the SDK is never loaded. Throws `config.invalid` on a malformed endpoint, headers
 * or read sampling (naming the variable, never its value).
 */
export function workerTracing(env: unknown): Promise<WorkerTracing> | undefined {
  if (decided !== undefined) return decided ?? undefined;
  const url = otlpSignalUrl(envReader(env), "traces");
  if (!url || !tracingSetting(text(env, "EDGEWISE_TRACING"))) {
    decided = null;
    return undefined;
  }
  let headers: Record<string, string>;
  let reads: ReturnType<typeof readSamplingSetting>;
  let writes: ReturnType<typeof writeSamplingSetting>;
  let resource: Record<string, string>;
  try {
    resource = otlpResource(
      text(env, "OTEL_SERVICE_NAME") ?? "edgewise-worker",
      text(env, "OTEL_RESOURCE_ATTRIBUTES"),
    );
    headers = parseOtlpHeaders(text(env, "OTEL_EXPORTER_OTLP_HEADERS"));
    reads = readSamplingSetting(text(env, "EDGEWISE_TRACE_SAMPLE_READS"));
    writes = writeSamplingSetting(text(env, "EDGEWISE_TRACE_SAMPLE_WRITES"));
  } catch (error) {
    throw new EdgewiseError("config.invalid", (error as Error).message);
  }
  decided = import("./tracing-sdk.ts").then(({ installProvider }) => {
    const flush = installProvider({ url, headers, timeoutMs: exportTimeoutMs }, resource);
    // A trace's first span is sampled before the SDK (shared/telemetry/trace/sampling.ts), per isolate here.
    sampleReads(reads);
    sampleWrites(writes);
    return { flush, around: (ctx, handle) => around(ctx, handle, flush) };
  });
  return decided;
}

async function around<T>(
  ctx: ExecutionContext,
  handle: (ctx: ExecutionContext) => Promise<T>,
  flush: () => Promise<void>,
): Promise<T> {
  const pending: Array<Promise<unknown>> = [];
  const tracked = new Proxy(ctx, {
    get(target, property) {
      if (property === "waitUntil") {
        return (promise: Promise<unknown>) => {
          pending.push(promise);
          target.waitUntil(promise);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  try {
    return await handle(tracked);
  } finally {
    ctx.waitUntil(settled(pending).then(flush));
  }
}

/** Waits until every promise in `pending` has settled, including any added while waiting. */
async function settled(pending: Array<Promise<unknown>>): Promise<void> {
  let seen = -1;
  while (seen !== pending.length) {
    seen = pending.length;
    await Promise.allSettled(pending.slice());
  }
}
