// Gateway cost: requests/s and latency of the full chain against bare Hono, same load generator, same run (Bun).
import { cpus, loadavg } from "node:os";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { closedLoop, openLoop, type Result } from "./load.ts";
import { withServer as spawnServer } from "./spawn.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
const withServer = <T>(variant: string, run: (base: string) => Promise<T>) =>
  spawnServer(variant, { BENCH_JWT_SECRET: secret }, run);

const token = await issueToken({ sub: "bench", scopes: ["admin"], ttlSeconds: 3_600, secret });
const headers = { authorization: `Bearer ${token}` };
/** 1,000 actors, so the bench measures the gateway rather than one actor's mailbox. */
const path = (i: number) => `/v1/counters/k${i % 1000}`;

interface Variant {
  name: string;
  max: Result;
  halfLoad?: Result;
}

const variants: Variant[] = [];
for (const name of ["bare", "memory", "redis"]) {
  console.error(`bench/gateway: ${name}`);
  const max = await withServer(name, async (base) => {
    await closedLoop(base, path, headers, concurrency, 1); // warm-up
    return closedLoop(base, path, headers, concurrency, seconds);
  });
  variants.push({ name, max });
}
// Half load: half of the slowest variant's maximum, offered to every variant at the same rate. Half of bare
// Hono's maximum would be more than the full chain can serve at all, and its "latency" would only be queueing.
const bareMax = variants[0]?.max.requestsPerSecond ?? 0;
const halfRate = Math.round(Math.min(...variants.map((variant) => variant.max.requestsPerSecond)) / 2);
for (const variant of variants) {
  variant.halfLoad = await withServer(variant.name, async (base) => {
    await closedLoop(base, path, headers, concurrency, 1);
    return openLoop(base, path, headers, halfRate, seconds);
  });
}

const ratio = (name: string) =>
  Math.round(((variants.find((v) => v.name === name)?.max.requestsPerSecond ?? 0) / bareMax) * 1000) / 1000;
const addedP99 = (name: string) => {
  const half = variants.find((v) => v.name === name)?.halfLoad;
  const bare = variants[0]?.halfLoad;
  return half && bare ? Math.round((half.p99Ms - bare.p99Ms) * 1000) / 1000 : undefined;
};
const report = {
  bench: "gateway",
  runtime: `bun ${Bun.version}`,
  chain:
    "request id, telemetry, secure headers, client ip, body limit, timeout, HS256 JWT, rate limit, validation, actor ask (GET: a read turn on the local host)",
  concurrency,
  seconds,
  variants,
  halfLoadRequestsPerSecond: halfRate,
  halfLoadIs: "half of the slowest variant's maximum, the same offered rate for every variant",
  ratios: { memoryOverBare: ratio("memory"), redisOverBare: ratio("redis") },
  addedP99AtHalfLoadMs: { memory: addedP99("memory"), redis: addedP99("redis") },
  goal: {
    description: "full chain >= 75% of bare Hono's requests/s, and < 1 ms added at p99 at half load",
    memory: ratio("memory") >= 0.75 && (addedP99("memory") ?? 99) < 1,
    redis: ratio("redis") >= 0.75 && (addedP99("redis") ?? 99) < 1,
  },
  machine: { cpus: cpus().length, loadAverageAtStart: loadavg().map((n) => Math.round(n * 100) / 100) },
  note: "server and load generator share the 2 cores; each server runs in its own process",
};
console.log(JSON.stringify(report, null, 2));
