// Tracing overhead on the gateway: the `memory` variant (full chain, actor ask on the local host) with tracing off
// and on. Each round starts one fresh server process per mode, warms each up, then drives them in turn for a short
// slice each (off, on, full; the next round in another order), so a change in the machine's load (other jobs share
// the two cores) falls on every mode alike, and no mode keeps a lucky or unlucky process. Medians over the rounds.
//
//   bun bench/gateway/tracing.ts                                 # 15 rounds of 2 s slices: off, on, full
//   bun bench/gateway/tracing.ts --rounds 21 --seconds 1 --modes off,sdk,on,full
//   bun bench/gateway/tracing.ts --baseline ../before --modes off,on,full,before:off,before:on
//
// `--baseline <dir>`: another checkout of the repo (with its node_modules); a mode `before:<mode>` runs that
// checkout's bench/gateway/servers.ts with the same environment, in the same rounds.
//
// Modes:
// - `off`: no SDK, as with EDGEWISE_TRACING=0;
// - `on`: what a node runs by default (deploy/tracing.ts startNodeTracing: the SDK, reads sampled at the default
//   EDGEWISE_TRACE_SAMPLE_READS, the embedded trace store);
// - `full`: the same with EDGEWISE_TRACE_SAMPLE_READS=1, every request recorded;
// - `sdk`: the SDK with every request recorded, no store (to tell the store's cost from the SDK's);
// - `none`: the node's tracing with no read recorded (EDGEWISE_TRACE_SAMPLE_READS=0): what a dropped request costs;
// - `tenth`: one read in ten recorded (EDGEWISE_TRACE_SAMPLE_READS=0.1).
// The bench's own environment must not set EDGEWISE_TRACE_SAMPLE_READS: `on` is the default by definition.
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { defaultReadSampling } from "../../deploy/tracing.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { closedLoop } from "./load.ts";
import { cpuMs, type RunningServer, startServer } from "./spawn.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "15" },
    seconds: { type: "string", default: "2" },
    warmup: { type: "string", default: "1" },
    concurrency: { type: "string", default: "64" },
    modes: { type: "string", default: "off,on,full" },
    variant: { type: "string", default: "memory" },
    baseline: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const concurrency = Number(values.concurrency);
const modes = String(values.modes).split(",");
const modeEnv: Record<string, Record<string, string | undefined>> = {
  off: { BENCH_TRACING: undefined },
  on: { BENCH_TRACING: "1", EDGEWISE_TRACE_SAMPLE_READS: undefined },
  full: { BENCH_TRACING: "1", EDGEWISE_TRACE_SAMPLE_READS: "1" },
  sdk: { BENCH_TRACING: "sdk", EDGEWISE_TRACE_SAMPLE_READS: "1" },
  none: { BENCH_TRACING: "1", EDGEWISE_TRACE_SAMPLE_READS: "0" },
  tenth: { BENCH_TRACING: "1", EDGEWISE_TRACE_SAMPLE_READS: "0.1" },
};
/** `before:on` is `on` on the baseline checkout. */
const baseMode = (mode: string) => mode.replace(/^before:/, "");
for (const mode of modes) {
  if (!modeEnv[baseMode(mode)]) throw new Error(`unknown mode ${mode} (off, on, full, sdk, none, tenth)`);
  if (mode !== baseMode(mode) && !values.baseline) throw new Error(`${mode} needs --baseline <checkout>`);
}
if (process.env.EDGEWISE_TRACE_SAMPLE_READS !== undefined) {
  throw new Error("unset EDGEWISE_TRACE_SAMPLE_READS: `on` measures the node's default");
}
const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
const token = await issueToken({ sub: "bench", scopes: ["admin"], ttlSeconds: 3_600, secret });
const headers = { authorization: `Bearer ${token}` };
/** 1,000 actors, as in bench/gateway/index.ts. */
const path = (i: number) => `/v1/counters/k${i % 1000}`;
const loadAtStart = loadavg().map((n) => Math.round(n * 100) / 100);

interface Slice {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Server CPU per request over the slice, in µs (Linux only). */
  serverCpuUsPerRequest?: number;
}
const results = new Map<string, Slice[]>(modes.map((mode) => [mode, []]));
const servers = new Map<string, RunningServer>();
const stopAll = async () => {
  await Promise.all([...servers.values()].map((server) => server.stop()));
  servers.clear();
};
try {
  for (let round = 0; round < rounds; round++) {
    // Fresh server processes every round (a process can be a few percent faster or slower than another for its
    // whole life), each warmed up, then measured one after the other.
    for (const mode of modes) {
      const server = await startServer(
        String(values.variant),
        { BENCH_JWT_SECRET: secret, ...modeEnv[baseMode(mode)] },
        mode === baseMode(mode) ? undefined : values.baseline,
      );
      servers.set(mode, server);
      await closedLoop(server.base, path, headers, concurrency, warmup);
    }
    // Each round starts with another mode, so none is always first after the others.
    const order = modes.map((_, i) => modes[(i + round) % modes.length] as string);
    for (const mode of order) {
      const server = servers.get(mode) as RunningServer;
      // The trace store writes what it buffered within 250 ms: let the warm-up's (or the previous slice's) land
      // before the slice, and this slice's before the CPU reading, so each write counts against its own mode.
      await Bun.sleep(400);
      const cpuBefore = cpuMs(server.pid);
      const max = await closedLoop(server.base, path, headers, concurrency, seconds);
      await Bun.sleep(400);
      const cpuAfter = cpuMs(server.pid);
      const slice: Slice = {
        requestsPerSecond: max.requestsPerSecond,
        p50Ms: max.p50Ms,
        p99Ms: max.p99Ms,
        errors: max.errors,
      };
      if (cpuBefore !== undefined && cpuAfter !== undefined && max.requests > 0)
        slice.serverCpuUsPerRequest = Math.round(((cpuAfter - cpuBefore) * 1000) / max.requests);
      results.get(mode)?.push(slice);
      console.error(`bench/gateway/tracing: round ${round + 1} ${mode}: ${JSON.stringify(slice)}`);
    }
    await stopAll();
  }
} finally {
  await stopAll();
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
const summary = Object.fromEntries(
  modes.map((mode) => {
    const slices = results.get(mode) ?? [];
    const cpu = slices.flatMap((slice) =>
      slice.serverCpuUsPerRequest === undefined ? [] : [slice.serverCpuUsPerRequest],
    );
    return [
      mode,
      {
        medianRequestsPerSecond: Math.round(median(slices.map((slice) => slice.requestsPerSecond))),
        medianP50Ms: median(slices.map((slice) => slice.p50Ms)),
        medianP99Ms: median(slices.map((slice) => slice.p99Ms)),
        ...(cpu.length ? { medianServerCpuUsPerRequest: median(cpu) } : {}),
        errors: slices.reduce((sum, slice) => sum + slice.errors, 0),
        slices: slices.map((slice) => slice.requestsPerSecond),
      },
    ];
  }),
);
/** The mode a mode is compared with: `off` on the same checkout. */
const offOf = (mode: string) => (mode === baseMode(mode) ? "off" : "before:off");
const compared = modes.filter((mode) => baseMode(mode) !== "off" && results.has(offOf(mode)));
/** 1 − (mode's median req/s ÷ off's median req/s). */
const overhead = Object.fromEntries(
  compared.map((mode) => {
    const off = summary[offOf(mode)]?.medianRequestsPerSecond ?? Number.NaN;
    return [mode, Math.round((1 - (summary[mode]?.medianRequestsPerSecond ?? 0) / off) * 1000) / 1000];
  }),
);
/** The same per round (each mode's slice against off's slice of that round), then the median: load-robust. */
const pairedOverhead = Object.fromEntries(
  compared.map((mode) => {
    const off = results.get(offOf(mode)) ?? [];
    const ratios = (results.get(mode) ?? []).map(
      (slice, i) => 1 - slice.requestsPerSecond / (off[i]?.requestsPerSecond ?? Number.NaN),
    );
    return [mode, Math.round(median(ratios) * 1000) / 1000];
  }),
);
console.log(
  JSON.stringify(
    {
      bench: "gateway/tracing",
      runtime: `bun ${Bun.version}`,
      variant: values.variant,
      concurrency,
      secondsPerSlice: seconds,
      rounds,
      modes: {
        off: "no trace SDK (EDGEWISE_TRACING=0)",
        on: `the node's default (EDGEWISE_TRACE_SAMPLE_READS unset): reads sampled ${JSON.stringify(defaultReadSampling)}, everything else recorded`,
        full: "every request recorded (EDGEWISE_TRACE_SAMPLE_READS=1)",
        sdk: "every request recorded by the SDK, no trace store",
        none: "no read recorded (EDGEWISE_TRACE_SAMPLE_READS=0): the cost of a request the sampler drops",
        tenth: "one read in ten recorded (EDGEWISE_TRACE_SAMPLE_READS=0.1)",
        ...(values.baseline ? { "before:*": `the same, on the checkout in ${values.baseline}` } : {}),
      },
      summary,
      overheadOfRequestsPerSecond: overhead,
      pairedOverheadOfRequestsPerSecond: pairedOverhead,
      goal: {
        description: "tracing on costs at most 10% of requests/s (median over slices)",
        ...Object.fromEntries(Object.entries(overhead).map(([mode, cost]) => [mode, cost <= 0.1])),
      },
      machine: {
        cpus: cpus().length,
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadavg().map((n) => Math.round(n * 100) / 100),
      },
    },
    null,
    2,
  ),
);
