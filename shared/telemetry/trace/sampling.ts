// Head sampling of the traces a process starts: which read requests, and which writes, that start a trace are
// recorded. The gateway (and a turn with no caller) asks before it asks the trace SDK, so a dropped trace makes no SDK
// span at all; every other span is the SDK's ParentBased(AlwaysOn) (a child follows its parent, so a trace is whole or
// absent). The SDK's wiring installs the policies with it: deploy/tracing.ts on Bun and Deno,
// actors/hosts/cloudflare/tracing.ts on Workers.
import { EdgewiseError } from "../../errors/index.ts";

/** A share of the traces (`{ ratio: 0.1 }`), or at most so many a second (`{ perSecond: 10 }`). */
export type TraceSampling = { ratio: number } | { perSecond: number };
/** The policy for reads that start a trace. */
export type ReadSampling = TraceSampling;

/** The methods that read: GET, HEAD, OPTIONS. */
export function isReadMethod(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

/** A share from 0 to 1 (`0.1`; `1` records every read) or a rate (`10/s`); undefined when it is neither. */
export function parseTraceSampling(text: string): TraceSampling | undefined {
  const trimmed = text.trim();
  const rate = /^(\d+(?:\.\d+)?)\s*\/\s*s$/.exec(trimmed);
  if (rate) return { perSecond: Number(rate[1]) };
  const ratio = trimmed === "" ? Number.NaN : Number(trimmed);
  return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? { ratio } : undefined;
}

/** The default for reads that start a trace: at most 10 a second per process (ARCHITECTURE.md, Sampling: why). */
export const defaultReadSampling: ReadSampling = { perSecond: 10 };

/**
 * The default for writes that start a trace (a POST, PUT or DELETE without a caller's `traceparent`, or an ask made
 * by code outside any request): at most 10 a second per process, every one while they are fewer. Why a rate: under
 * load, recording every write cost about a tenth of the saga's orders/s and over a quarter of the queue's
 * messages/s (bench/README.md), and the embedded store (20,000 spans, about 25 an order) kept only seconds of them.
 */
export const defaultWriteSampling: TraceSampling = { perSecond: 10 };

/**
 * EDGEWISE_TRACE_SAMPLE_READS's value: a share or a rate, `defaultReadSampling` when unset or blank. Throws on
 * anything else, naming the variable.
 */
export function readSamplingSetting(value: string | undefined): ReadSampling {
  return samplingSetting("EDGEWISE_TRACE_SAMPLE_READS", "reads", value, defaultReadSampling);
}

/** EDGEWISE_TRACE_SAMPLE_WRITES's value, as for reads; `defaultWriteSampling` when unset or blank. */
export function writeSamplingSetting(value: string | undefined): TraceSampling {
  return samplingSetting("EDGEWISE_TRACE_SAMPLE_WRITES", "writes", value, defaultWriteSampling);
}

function samplingSetting(
  name: string,
  what: string,
  value: string | undefined,
  fallback: TraceSampling,
): TraceSampling {
  if (value === undefined || value.trim() === "") return fallback;
  const sampling = parseTraceSampling(value);
  if (!sampling) {
    const message = `must be a share of ${what} from 0 to 1 (e.g. 0.1) or a rate (e.g. 10/s)`;
    throw new EdgewiseError("config.invalid", `${name} ${message}`, { issues: [{ path: name, message }] });
  }
  return sampling;
}

/** EDGEWISE_TRACING's value: off when `0`, `off`, `false` or `no`; on otherwise. */
export function tracingSetting(value: string | undefined): boolean {
  return !["0", "off", "false", "no"].includes((value ?? "").trim().toLowerCase());
}

/** Decides, trace by trace. A rate is a token bucket holding one second's worth: every read while they are fewer. */
export class TraceSampler {
  private readonly ratio: number | undefined;
  private readonly perSecond: number;
  private readonly capacity: number;
  private tokens: number;
  private last: number;

  constructor(
    readonly sampling: TraceSampling,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.ratio = "ratio" in sampling ? sampling.ratio : undefined;
    this.perSecond = "perSecond" in sampling ? sampling.perSecond : 0;
    this.capacity = this.perSecond > 0 ? Math.max(1, this.perSecond) : 0;
    this.tokens = this.capacity;
    this.last = now();
  }

  keep(): boolean {
    if (this.ratio !== undefined) return this.ratio >= 1 || Math.random() < this.ratio;
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** A process-wide policy, installed with the SDK; while none is, every trace is kept. */
class Policy {
  private sampler: TraceSampler | undefined;
  install(sampling: TraceSampling | undefined): void {
    this.sampler = sampling ? new TraceSampler(sampling) : undefined;
  }
  get sampling(): TraceSampling | undefined {
    return this.sampler?.sampling;
  }
  keep(): boolean {
    return this.sampler ? this.sampler.keep() : true;
  }
}
const reads = new Policy();
const writes = new Policy();

/** Installs the process's policy for reads (deploy/tracing.ts, with the SDK); undefined records every read. */
export const sampleReads = (sampling: ReadSampling | undefined): void => reads.install(sampling);
/** The process's policy for reads, if any. */
export const readSampling = (): ReadSampling | undefined => reads.sampling;
/** Whether a read that starts a trace is recorded: yes unless a policy says no. */
export const keepRead = (): boolean => reads.keep();

/** Installs the process's policy for writes that start a trace; undefined records every one. */
export const sampleWrites = (sampling: TraceSampling | undefined): void => writes.install(sampling);
/** The process's policy for writes, if any. */
export const writeSampling = (): TraceSampling | undefined => writes.sampling;
/**
 * Whether a write that starts a trace (a request that changes something, an ask or timer with no caller) is
 * recorded: yes unless a policy says no. Asked only for a trace's first span, never for one that continues a trace.
 */
export const keepWrite = (): boolean => writes.keep();
