// Head sampling of reads: which read requests that start a trace are recorded. The gateway asks before it asks the
// trace SDK, so a dropped read makes no SDK span at all; every other span is the SDK's ParentBased(AlwaysOn) (a child
// follows its parent, so a trace is whole or absent). The SDK's wiring installs the policy with it: deploy/tracing.ts
// on Bun and Deno, actors/hosts/cloudflare/tracing.ts on Workers.

/** A share of the reads (`{ ratio: 0.1 }`), or at most so many a second (`{ perSecond: 10 }`). */
export type ReadSampling = { ratio: number } | { perSecond: number };

/** The methods that read: GET, HEAD, OPTIONS. */
export function isReadMethod(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

/** A share from 0 to 1 (`0.1`; `1` records every read) or a rate (`10/s`); undefined when it is neither. */
export function parseReadSampling(text: string): ReadSampling | undefined {
  const trimmed = text.trim();
  const rate = /^(\d+(?:\.\d+)?)\s*\/\s*s$/.exec(trimmed);
  if (rate) return { perSecond: Number(rate[1]) };
  const ratio = trimmed === "" ? Number.NaN : Number(trimmed);
  return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? { ratio } : undefined;
}

/** The default for reads that start a trace: at most 10 a second per process (ARCHITECTURE.md, Sampling: why). */
export const defaultReadSampling: ReadSampling = { perSecond: 10 };

/**
 * EDGEWISE_TRACE_SAMPLE_READS's value: a share or a rate, `defaultReadSampling` when unset or blank. Throws on
 * anything else, naming the variable.
 */
export function readSamplingSetting(value: string | undefined): ReadSampling {
  if (value === undefined || value.trim() === "") return defaultReadSampling;
  const sampling = parseReadSampling(value);
  if (!sampling) {
    throw new Error(
      "EDGEWISE_TRACE_SAMPLE_READS must be a share of reads from 0 to 1 (e.g. 0.1) or a rate (e.g. 10/s)",
    );
  }
  return sampling;
}

/** EDGEWISE_TRACING's value: off when `0`, `off`, `false` or `no`; on otherwise. */
export function tracingSetting(value: string | undefined): boolean {
  return !["0", "off", "false", "no"].includes((value ?? "").trim().toLowerCase());
}

/** Decides, read by read. A rate is a token bucket holding one second's worth: every read while they are fewer. */
export class ReadSampler {
  private readonly ratio: number | undefined;
  private readonly perSecond: number;
  private readonly capacity: number;
  private tokens: number;
  private last: number;

  constructor(
    readonly sampling: ReadSampling,
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

let installed: ReadSampler | undefined;

/** Installs the process's policy (deploy/tracing.ts, with the SDK); undefined records every read. */
export function sampleReads(sampling: ReadSampling | undefined): void {
  installed = sampling ? new ReadSampler(sampling) : undefined;
}

/** The process's policy, if any. */
export function readSampling(): ReadSampling | undefined {
  return installed?.sampling;
}

/** Whether a read that starts a trace is recorded: yes unless a policy says no. */
export function keepRead(): boolean {
  return installed ? installed.keep() : true;
}
