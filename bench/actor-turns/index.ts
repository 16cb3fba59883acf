// Durable turns/s and ask latency on the Bun local host (real SQLite file, WAL), one hot actor and 1,000 actors.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost, type SyncMode } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";

/** The bar for one actor: this many durable turns per second with p99 under `p99Ms`. */
const goal = { actors: 1, turnsPerSecond: 10_000, p99Ms: 2 };

interface Plan {
  name: string;
  actors: number;
  inFlight: number;
}

interface Scenario extends Plan {
  sqliteSync: SyncMode;
  turns: number;
  seconds: number;
  turnsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};

/** Each scenario stops at whichever bound comes first. */
const maxTurns = Number(flag("turns") ?? 50_000);
const maxSeconds = Number(flag("seconds") ?? 5);
const warmupTurns = Number(flag("warmup") ?? 5_000);
const syncModes = (flag("sync")?.split(",") ?? ["FULL", "NORMAL"]) as SyncMode[];
const list = (name: string, fallback: string): number[] =>
  (flag(name) ?? fallback).split(",").filter(Boolean).map(Number);
const hotInFlight = list("hot", "1,4,8,16,64");
const spreadInFlight = list("spread", "16,64,256");
const spreadActors = 1_000;

const plans: Plan[] = [
  ...hotInFlight.map((inFlight): Plan => ({ name: `hot-actor x${inFlight}`, actors: 1, inFlight })),
  ...spreadInFlight.map(
    (inFlight): Plan => ({
      name: `${spreadActors}-actors x${inFlight}`,
      actors: spreadActors,
      inFlight,
    }),
  ),
];

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

/** A closed loop: `inFlight` workers, each asks, awaits the durable reply, asks again. */
async function drive(
  host: LocalActorHost,
  keys: string[],
  inFlight: number,
  turnLimit: number,
  secondLimit: number,
  latencies: Float64Array | undefined,
): Promise<{ turns: number; seconds: number }> {
  let started = 0;
  let done = 0;
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + secondLimit * 1000;
  async function worker(): Promise<void> {
    while (started < turnLimit && performance.now() < deadline) {
      started++;
      const key = keys[next++ % keys.length]!;
      const sent = performance.now();
      await host.ask({ type: "counter", key }, "Increment", { by: 1 });
      if (latencies) latencies[done] = performance.now() - sent;
      done++;
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { turns: done, seconds: (performance.now() - t0) / 1000 };
}

async function run(dir: string, sync: SyncMode, plan: Plan): Promise<Scenario> {
  const path = join(dir, `${sync}-${plan.actors}-${plan.inFlight}.sqlite`);
  const host = new LocalActorHost({ actors: [counterActor], db: openBunSqlite(path, sync) }).start();
  try {
    const keys = Array.from({ length: plan.actors }, (_, i) => `k${i}`);
    // Warm-up: activate every actor, then let the JIT and SQLite's page cache settle.
    await drive(host, keys, Math.min(plan.actors, 64), plan.actors, 60, undefined);
    await drive(host, keys, plan.inFlight, warmupTurns, 1, undefined);
    const before = countAll(host, keys);

    const latencies = new Float64Array(maxTurns);
    const { turns, seconds } = await drive(host, keys, plan.inFlight, maxTurns, maxSeconds, latencies);
    // Every turn must be durable and counted exactly once.
    const after = countAll(host, keys);
    if (after - before !== turns) throw new Error(`${plan.name}: counted ${after - before}, ran ${turns}`);

    const sorted = latencies.subarray(0, turns).sort();
    const result: Scenario = {
      ...plan,
      name: `${plan.name} ${sync}`,
      sqliteSync: sync,
      turns,
      seconds: round(seconds),
      turnsPerSecond: Math.round(turns / seconds),
      p50Ms: round(percentile(sorted, 50)),
      p99Ms: round(percentile(sorted, 99)),
    };
    console.error(
      `${result.name.padEnd(36)} ${String(result.turnsPerSecond).padStart(7)} turns/s  p50 ${result.p50Ms} ms  p99 ${result.p99Ms} ms  (${turns} turns, ${result.seconds} s)`,
    );
    return result;
  } finally {
    await host.stop();
  }
}

function countAll(host: LocalActorHost, keys: string[]): number {
  let total = 0;
  for (const key of keys) {
    const state = host.inspect({ type: "counter", key }).state as { count: number } | undefined;
    total += state?.count ?? 0;
  }
  return total;
}

const loadAverageAtStart = loadavg().map((n) => round(n, 2));
const dir = mkdtempSync(join(tmpdir(), "edgewise-bench-"));
const scenarios: Scenario[] = [];
try {
  console.error(
    `actor-turns: Bun ${Bun.version}, SQLite file in ${dir}; each scenario <= ${maxTurns} turns or ${maxSeconds} s after ${warmupTurns} warm-up turns`,
  );
  console.error(
    "FULL = fsync per group commit (survives power loss); NORMAL = survives a process crash only",
  );
  for (const sync of syncModes) {
    for (const plan of plans) scenarios.push(await run(dir, sync, plan));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const meets = (s: Scenario): boolean =>
  s.actors === goal.actors && s.turnsPerSecond >= goal.turnsPerSecond && s.p99Ms < goal.p99Ms;
/** Per sync mode: the in-flight counts on one actor that met the goal. */
const verdicts = syncModes.map((sync) => {
  const met = scenarios.filter((s) => s.sqliteSync === sync && meets(s));
  return { sqliteSync: sync, met: met.length > 0, inFlight: met.map((s) => s.inFlight) };
});

const report = {
  host: "local (LocalActorHost, bun:sqlite, WAL, in process)",
  runtime: `bun ${Bun.version}`,
  sqliteSync: syncModes.length === 1 ? syncModes[0] : syncModes,
  scenarios,
  goal: { description: ">= 10,000 durable turns/s on one actor with p99 < 2 ms", ...goal, verdicts },
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    platform: process.platform,
    node: process.versions.node,
    loadAverageAtStart,
  },
};
console.log(JSON.stringify(report, null, 2));
