// Durable turns/s and ask latency on Durable Objects in workerd (`wrangler dev`): one hot actor and 1,000 actors.
import { freePort, wranglerDev, wranglerEnv } from "../../test/support/wrangler.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";

/** The bar for one Durable Object: Cloudflare's soft limit is about 1,000 requests/s per object. */
const goal = { turnsPerSecond: 1_000 };

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};
/** Each scenario stops at whichever bound comes first. */
const maxTurns = Number(flag("turns") ?? 20_000);
const maxSeconds = Number(flag("seconds") ?? 5);
const inFlight = Number(flag("in-flight") ?? 32);
const warmupTurns = Number(flag("warmup") ?? 1_000);
const spreadActors = 1_000;

interface Result {
  turns: number;
  seconds: number;
  turnsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const root = join(import.meta.dir, "../..");
const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function startWrangler(persistTo: string) {
  const port = freePort();
  // Its own process group: wrangler runs workerd as children, and killing wrangler alone leaves them serving.
  const child = Bun.spawn(
    wranglerDev({
      config: "bench/actor-turns/worker/wrangler.toml",
      port,
      persistTo,
      extra: ["--log-level", "warn"],
    }),
    {
      cwd: root,
      env: { ...process.env, ...wranglerEnv },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
      detached: true,
    },
  );
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      child.kill("SIGKILL");
    }
  };
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return { base, stop };
    } catch {
      // not accepting yet
    }
    if (child.exitCode !== null) break;
    await Bun.sleep(100);
  }
  stop();
  throw new Error("wrangler dev did not start within 60 s");
}

/** A closed loop over HTTP: `inFlight` workers, each asks, awaits the durable reply, asks again. */
async function drive(
  base: string,
  keys: string[],
  turnLimit: number,
  secondLimit: number,
  route: (key: string) => [method: string, path: string] = (key) => ["POST", `/ask/${key}`],
): Promise<Result> {
  const latencies = new Float64Array(turnLimit);
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + secondLimit * 1000;
  async function worker(): Promise<void> {
    while (started < turnLimit && performance.now() < deadline) {
      const key = keys[started++ % keys.length]!;
      const sent = performance.now();
      const [method, path] = route(key);
      const response = await fetch(`${base}${path}`, { method });
      if (!response.ok) throw new Error(`ask ${key}: ${response.status} ${await response.text()}`);
      await response.arrayBuffer();
      latencies[done++] = performance.now() - sent;
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const sorted = latencies.subarray(0, done).sort();
  return {
    turns: done,
    seconds: round(seconds),
    turnsPerSecond: Math.round(done / seconds),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
  };
}

async function countAll(base: string, keys: string[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < keys.length; i += 50) {
    const counts = await Promise.all(
      keys.slice(i, i + 50).map(async (key) => {
        const state = (await (await fetch(`${base}/count/${key}`)).json()) as { count: number };
        return state.count;
      }),
    );
    for (const count of counts) total += count;
  }
  return total;
}

/** Runs a scenario and checks that every turn it counted is durable and applied exactly once. */
async function scenario(name: string, base: string, keys: string[]): Promise<Result> {
  await drive(base, keys, Math.max(warmupTurns, keys.length), 60);
  const before = await countAll(base, keys);
  const result = await drive(base, keys, maxTurns, maxSeconds);
  const after = await countAll(base, keys);
  if (after - before !== result.turns)
    throw new Error(`${name}: counted ${after - before}, ran ${result.turns}`);
  console.error(
    `${name.padEnd(22)} ${String(result.turnsPerSecond).padStart(6)} turns/s  p50 ${result.p50Ms} ms  p99 ${result.p99Ms} ms  (${result.turns} turns, ${result.seconds} s)`,
  );
  return result;
}

/** Asks looped inside the Worker against one stub; also checked: every turn durable and applied once. */
async function inWorker(base: string, key: string, turns: number, concurrency: number, log = true) {
  const before = await countAll(base, [key]);
  const response = await fetch(`${base}/loop/${key}?turns=${turns}&inFlight=${concurrency}`, {
    method: "POST",
  });
  if (!response.ok) throw new Error(`loop: ${response.status} ${await response.text()}`);
  const result = (await response.json()) as Result;
  const after = await countAll(base, [key]);
  if (after - before !== result.turns)
    throw new Error(`in-Worker: counted ${after - before}, ran ${result.turns}`);
  if (!log) return result;
  console.error(
    `in-Worker x${String(concurrency).padEnd(12)} ${String(result.turnsPerSecond).padStart(6)} turns/s  p50 ${result.p50Ms} ms  p99 ${result.p99Ms} ms  (${result.turns} turns)`,
  );
  return result;
}

// Load before the run: other work on the same CPUs skews every number here.
const loadBefore = loadavg()[0];
const persistTo = mkdtempSync(join(tmpdir(), "edgewise-bench-workerd-"));
const wrangler = await startWrangler(persistTo);
let report: Record<string, unknown>;
try {
  console.error(
    `actor-turns on workerd: ${inFlight} asks in flight over loopback HTTP; each scenario <= ${maxTurns} turns or ${maxSeconds} s`,
  );
  // The HTTP hop alone (a route that touches no actor): the ceiling of the HTTP scenarios under wrangler dev.
  await drive(wrangler.base, ["-"], warmupTurns, 60, () => ["GET", "/healthz"]);
  const httpOnly = await drive(wrangler.base, ["-"], maxTurns, maxSeconds, () => ["GET", "/healthz"]);
  console.error(
    `HTTP only (no actor)   ${String(httpOnly.turnsPerSecond).padStart(6)} req/s    p50 ${httpOnly.p50Ms} ms  p99 ${httpOnly.p99Ms} ms`,
  );
  const oneActor = await scenario("one actor (HTTP)", wrangler.base, ["hot"]);
  const spread = Array.from({ length: spreadActors }, (_, i) => `k${i}`);
  const thousandActors = await scenario(`${spreadActors} actors (HTTP)`, wrangler.base, spread);
  await inWorker(wrangler.base, "loop-warm", 1_000, inFlight, false);
  const inWorkerOneActor = {
    sequential: await inWorker(wrangler.base, "loop-seq", 5_000, 1),
    concurrent: await inWorker(wrangler.base, "loop-hot", maxTurns, inFlight),
  };
  report = {
    host: "durable-object (workerd, wrangler dev)",
    oneActor,
    thousandActors,
    concurrency: inFlight,
    httpOnly: {
      requests: httpOnly.turns,
      seconds: httpOnly.seconds,
      requestsPerSecond: httpOnly.turnsPerSecond,
      p50Ms: httpOnly.p50Ms,
      p99Ms: httpOnly.p99Ms,
      note: "GET /healthz at the same concurrency: what wrangler dev's HTTP path allows before any actor work",
    },
    inWorkerOneActor: {
      ...inWorkerOneActor,
      note: "asks from a Worker to one Durable Object stub, timed inside the Worker: no HTTP hop per turn",
    },
    note: "oneActor and thousandActors latencies include the loopback HTTP hop and the load generator on the same CPUs",
    goal: {
      ...goal,
      description: ">= 1,000 durable turns/s on one Durable Object",
      metOverHttp: oneActor.turnsPerSecond >= goal.turnsPerSecond,
      metInWorker: inWorkerOneActor.concurrent.turnsPerSecond >= goal.turnsPerSecond,
    },
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      platform: process.platform,
      bun: Bun.version,
      loadAverage1mBefore: Number(loadBefore?.toFixed(2)),
    },
  };
} finally {
  wrangler.stop();
  rmSync(persistTo, { recursive: true, force: true });
}
console.log(JSON.stringify(report, null, 2));
