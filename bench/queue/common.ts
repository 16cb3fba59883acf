// Shared by every system in the queue bench: payloads, the closed-loop driver, completion records, percentiles.
import { readdirSync, readFileSync } from "node:fs";
import { RedisClient } from "bun";

/** Wall-clock milliseconds with sub-millisecond resolution; one clock for senders and receivers (one process). */
export const now = (): number => performance.timeOrigin + performance.now();

export const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** What each message carries: the run it belongs to, its index, its send time, and padding up to the size. */
export interface Payload {
  r: number;
  i: number;
  t: number;
  pad: string;
}

/** Padding that makes `JSON.stringify(payload)` about `bytes` long (indices and times vary by a few bytes). */
export function padFor(bytes: number): string {
  const sample: Payload = { r: 1, i: 10_000, t: now(), pad: "" };
  return "x".repeat(Math.max(0, bytes - JSON.stringify(sample).length));
}

export interface Bounds {
  /** Messages to send. */
  messages: number;
  /** Messages per send call (one producer turn, one addBulk, one insert). */
  batch: number;
  /** Most messages sent and not yet completed: the closed loop's window. */
  window: number;
  /** Sending stops after this long. */
  seconds: number;
  /** After sending stops, how long to wait for the rest to complete. */
  drainSeconds: number;
}

export interface PhaseResult {
  sent: number;
  completed: number;
  seconds: number;
  messagesPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Completions of an index seen before in this run: at-most-once violated (must be 0). */
  duplicates: number;
  /** Completions that belong to no message of this run (an earlier run's stragglers, or garbage). */
  strays: number;
  /** Sent but not completed within the drain bound. */
  missing: number;
}

/**
 * Records completions of one run: latency per index, duplicates, and how many are outstanding. The driver waits
 * on it to keep at most `window` messages in flight.
 */
export class Recorder {
  readonly latencies: Float64Array;
  private readonly seen: Uint8Array;
  sent = 0;
  completed = 0;
  duplicates = 0;
  strays = 0;
  firstSendAt = 0;
  lastCompletionAt = 0;
  private waiters: Array<{ ready: () => boolean; resolve: () => void }> = [];

  constructor(
    readonly run: number,
    readonly capacity: number,
  ) {
    this.latencies = new Float64Array(capacity);
    this.seen = new Uint8Array(capacity);
  }

  /** A message was completed (committed, acknowledged) at `at`. */
  complete(run: number, index: number, sentAt: number, at: number): void {
    if (run !== this.run || !Number.isInteger(index) || index < 0 || index >= this.sent) {
      this.strays++;
      return;
    }
    if (this.seen[index]) {
      this.duplicates++;
      return;
    }
    this.seen[index] = 1;
    this.latencies[index] = at - sentAt;
    this.completed++;
    if (at > this.lastCompletionAt) this.lastCompletionAt = at;
    if (this.waiters.length > 0) this.check();
  }

  get outstanding(): number {
    return this.sent - this.completed;
  }

  /** Resolves when `ready()` holds (re-checked on each completion), or at `deadline` (epoch ms). */
  until(ready: () => boolean, deadline: number): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter = {
        ready,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve();
        },
        Math.max(0, deadline - now()),
      );
      this.waiters.push(waiter);
    });
  }

  private check(): void {
    const still: typeof this.waiters = [];
    for (const waiter of this.waiters) {
      if (waiter.ready()) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
  }

  result(): PhaseResult {
    const done: number[] = [];
    for (let index = 0; index < this.sent; index++) if (this.seen[index]) done.push(this.latencies[index]!);
    const sorted = Float64Array.from(done).sort();
    const seconds = this.completed > 0 ? (this.lastCompletionAt - this.firstSendAt) / 1000 : 0;
    return {
      sent: this.sent,
      completed: this.completed,
      seconds: round(seconds),
      messagesPerSecond: seconds > 0 ? Math.round(this.completed / seconds) : 0,
      p50Ms: round(percentile(sorted, 50)),
      p90Ms: round(percentile(sorted, 90)),
      p99Ms: round(percentile(sorted, 99)),
      maxMs: round(sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN),
      duplicates: this.duplicates,
      strays: this.strays,
      missing: this.sent - this.completed,
    };
  }
}

/** Sends `count` messages with indices `from…from+count-1` of run `run`; resolves once the system accepted them. */
export type Send = (run: number, from: number, count: number) => Promise<void>;

/**
 * The closed loop: one producer sends `batch` messages at a time while fewer than `window` are outstanding,
 * until `messages` are sent or `seconds` pass, then waits up to `drainSeconds` for the rest.
 */
export async function drive(recorder: Recorder, bounds: Bounds, send: Send): Promise<PhaseResult> {
  const total = Math.min(bounds.messages, recorder.capacity);
  recorder.firstSendAt = now();
  const deadline = recorder.firstSendAt + bounds.seconds * 1000;
  while (recorder.sent < total && now() < deadline) {
    const count = Math.min(bounds.batch, total - recorder.sent);
    const room = Math.max(0, bounds.window - count);
    await recorder.until(() => recorder.outstanding <= room, deadline);
    if (recorder.outstanding > room) break;
    const from = recorder.sent;
    // Counted as sent before the call: a fast system may complete a message before its send call returns.
    recorder.sent += count;
    await send(recorder.run, from, count);
  }
  await recorder.until(() => recorder.outstanding === 0, now() + bounds.drainSeconds * 1000);
  return recorder.result();
}

export function log(line: string): void {
  console.error(line);
}

export function describe(name: string, r: PhaseResult): string {
  return `${name.padEnd(34)} ${String(r.messagesPerSecond).padStart(7)} msg/s  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms  (${r.completed}/${r.sent} in ${r.seconds} s${r.duplicates ? `, ${r.duplicates} DUPLICATES` : ""}${r.missing ? `, ${r.missing} MISSING` : ""})`;
}

export interface Plan {
  bounds: Bounds;
  /** Messages sent and drained first, not measured (JIT, connections, actor activation). */
  warmup: number;
  /** The unloaded-latency probe: this many messages, one in flight at a time, at most `probeSeconds`. */
  probe: number;
  probeSeconds: number;
  pad: string;
}

export interface Phases {
  /** The closed loop at `window` in flight: throughput, and latency under load (Little: about window / rate). */
  loaded: PhaseResult & { cpu: CpuPerMessage };
  /** One message in flight at a time: the pipeline's own latency. */
  unloaded: PhaseResult;
  warmup: PhaseResult;
}

/** Warm-up, the loaded run and the unloaded probe, each a fresh run id; `attach` routes completions to it. */
export async function runPhases(
  label: string,
  plan: Plan,
  send: Send,
  attach: (recorder: Recorder) => void,
): Promise<Phases> {
  // Run ids differ between phases and between systems, so a straggler from an earlier run is a stray.
  const base = Math.floor(Math.random() * 1e6) * 10;
  const phase = async (run: number, messages: number, bounds: Bounds): Promise<PhaseResult> => {
    const recorder = new Recorder(run, messages);
    attach(recorder);
    return await drive(recorder, bounds, send);
  };
  const warmup = await phase(base + 1, plan.warmup, {
    ...plan.bounds,
    messages: plan.warmup,
    seconds: Math.min(plan.bounds.seconds, 15),
  });
  log(describe(`${label} warm-up`, warmup));
  const before = await cpuSnapshot();
  const measured = await phase(base + 2, plan.bounds.messages, plan.bounds);
  const loaded = { ...measured, cpu: cpuPerMessage(before, await cpuSnapshot(), measured.completed) };
  log(`${describe(`${label} loaded x${plan.bounds.window}`, loaded)}  cpu/msg ${JSON.stringify(loaded.cpu)}`);
  const unloaded = await phase(base + 3, plan.probe, {
    messages: plan.probe,
    batch: 1,
    window: 1,
    seconds: plan.probeSeconds,
    drainSeconds: plan.bounds.drainSeconds,
  });
  log(describe(`${label} unloaded x1`, unloaded));
  return { loaded, unloaded, warmup };
}

// --- CPU accounting: robust to other work on the machine, unlike messages/s ---

/** Processes started by a system (e.g. a broker process) whose CPU counts as the client side. */
export const trackedPids = new Set<number>();

const ticksPerSecond = 100; // Linux USER_HZ

function processTicks(pid: number | "self"): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return 0;
  }
}

function postgresTicks(): number {
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() !== "postgres") continue;
    } catch {
      continue;
    }
    ticks += processTicks(Number(entry));
  }
  return ticks;
}

async function redisCpuSeconds(): Promise<number> {
  const client = new RedisClient("redis://127.0.0.1:6379");
  try {
    const info = String(await client.send("INFO", ["cpu"]));
    const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
    return read("used_cpu_user") + read("used_cpu_sys");
  } catch {
    return Number.NaN;
  } finally {
    client.close();
  }
}

interface CpuSnapshot {
  clientMs: number;
  postgresMs: number;
  redisMs: number;
}

async function cpuSnapshot(): Promise<CpuSnapshot> {
  const usage = process.cpuUsage();
  let tracked = 0;
  for (const pid of trackedPids) tracked += processTicks(pid);
  return {
    clientMs: (usage.user + usage.system) / 1000 + (tracked * 1000) / ticksPerSecond,
    postgresMs: (postgresTicks() * 1000) / ticksPerSecond,
    redisMs: (await redisCpuSeconds()) * 1000,
  };
}

/** CPU microseconds per completed message, by where it was spent. */
export interface CpuPerMessage {
  /** The bench process (Edgewise node and embedded broker, or the BullMQ / pg-boss client) plus tracked pids. */
  clientUs: number;
  /** Every `postgres` process on the machine (other users of this Postgres would count too). */
  postgresUs: number;
  /** redis-server, from INFO cpu. */
  redisUs: number;
  totalUs: number;
}

function cpuPerMessage(before: CpuSnapshot, after: CpuSnapshot, messages: number): CpuPerMessage {
  const per = (ms: number) => (messages > 0 ? Math.round((ms * 1000) / messages) : 0);
  const clientUs = per(after.clientMs - before.clientMs);
  const postgresUs = per(after.postgresMs - before.postgresMs);
  const redisUs = per(after.redisMs - before.redisMs);
  return { clientUs, postgresUs, redisUs, totalUs: clientUs + postgresUs + redisUs };
}
