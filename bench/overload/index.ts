// Overload: `npm start`'s node in a process of its own, offered more orders than it settles; what it refuses, how it
// answers meanwhile, and whether the backlog drains with every accepted order settled once.
//
//   bun bench/overload/index.ts                              # 200 orders/s for 30 s, then drain and check
//   bun bench/overload/index.ts --rate 200 --seconds 30 --env EDGEWISE_MAX_QUEUE_DELAY=0s
//
// One JSON object on stdout; progress on stderr. See bench/README.md, "overload/index.ts".
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { parseConfig } from "../../shared/config/index.ts";
import { startNode } from "../../deploy/bun/node.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { checkInvariants, type World } from "../../test/chaos/invariants.ts";
import { CommerceClient, type OrderView } from "../../test/commerce/client.ts";
import { seededRandom } from "../../deploy/demo/support.ts";
import { percentiles, round } from "../saga/shop.ts";
import { type CpuSample, cpuBetween, sampleCpu } from "./node-cpu.ts";

const { values: flags } = parseArgs({
  options: {
    /** Orders offered per second during the burst (open loop: on schedule, whatever the answers). */
    rate: { type: "string", default: "200" },
    /** Length of the burst. */
    seconds: { type: "string", default: "30" },
    /** GET /v1/orders/{id} per second, during the burst and the drain. */
    reads: { type: "string", default: "10" },
    /** Longest wait for the backlog to drain after the burst. */
    "drain-seconds": { type: "string", default: "240" },
    /** Orders per second after the drain, to see latency back to normal, for 10 s. */
    "after-rate": { type: "string", default: "10" },
    skus: { type: "string", default: "200" },
    customers: { type: "string", default: "300" },
    /** Extra environment for the node, `NAME=value`, repeatable. */
    env: { type: "string", multiple: true, default: [] },
  },
});
const rate = Number(flags.rate);
const seconds = Number(flags.seconds);
const readRate = Number(flags.reads);
const drainMs = Number(flags["drain-seconds"]) * 1000;
const afterRate = Number(flags["after-rate"]);
if (!(rate > 0 && rate <= 1000 && seconds > 0 && seconds <= 120))
  throw new Error("0 < --rate <= 1000 and 0 < --seconds <= 120 (bounded load)");
const log = (line: string) => console.error(`[overload] ${line}`);
const REQUEST_TIMEOUT_MS = 30_000;
const PROBE_TIMEOUT_MS = 10_000;
const STOCK = 1_000_000_000;
const BALANCE = 1_000_000_000_000;

// ---- The node: `npm start` (edge/entries/bun.ts) as a child process, embedded defaults, a fresh data dir ----
const dataDir = mkdtempSync(join(os.tmpdir(), "edgewise-overload-"));
const port = (() => {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const p = probe.port;
  probe.stop(true);
  return p;
})();
const base = `http://127.0.0.1:${port}`;
const extraEnv = Object.fromEntries(
  (flags.env as string[]).map((pair) => [
    pair.slice(0, pair.indexOf("=")),
    pair.slice(pair.indexOf("=") + 1),
  ]),
);
const nodeEnv: Record<string, string> = {
  PATH: process.env.PATH ?? "",
  HOME: process.env.HOME ?? "/tmp",
  HOST: "127.0.0.1",
  PORT: String(port),
  EDGEWISE_DATA_DIR: dataDir,
  WEBHOOKS_ALLOW_PRIVATE: "1",
  ...extraEnv,
};
/** The node's own output, read at the end for its error lines. */
const nodeLogPath = join(os.tmpdir(), `edgewise-overload-${process.pid}.log`);
const repoRoot = join(import.meta.dir, "..", "..");
const child = Bun.spawn([process.execPath, "edge/entries/bun.ts"], {
  cwd: repoRoot,
  env: nodeEnv,
  stdout: Bun.file(nodeLogPath),
  stderr: Bun.file(`${nodeLogPath}.err`),
});
async function timed(url: string, init: RequestInit = {}, timeoutMs = PROBE_TIMEOUT_MS) {
  const started = performance.now();
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    return { status: response.status, ms: performance.now() - started, text, headers: response.headers };
  } catch (error) {
    const name = (error as Error).name;
    return {
      status: name === "TimeoutError" ? -1 : 0,
      ms: performance.now() - started,
      text: "",
      headers: undefined,
    };
  }
}

const startedAt = performance.now();
for (;;) {
  if ((await timed(`${base}/healthz`, {}, 1000)).status === 200) break;
  if (child.exitCode !== null) throw new Error(`the node exited with ${child.exitCode}`);
  if (performance.now() - startedAt > 60_000) throw new Error("the node did not answer /healthz in 60 s");
  await Bun.sleep(100);
}
log(
  `node pid ${child.pid} at ${base}, data in ${dataDir}, up in ${round((performance.now() - startedAt) / 1000, 1)} s`,
);
const jwtSecret = readFileSync(join(dataDir, "jwt-secret"), "utf8").trim();
const client = new CommerceClient({ base, jwtSecret });
const CUSTOMER_SCOPES = ["orders:write", "orders:read", "billing:read", "loyalty:read"];

/** One call as `sub` (its own rate-limit budget); 429s are waited out (setup and checks only). */
async function call(sub: string, scopes: string[], method: string, path: string, body?: unknown) {
  const token = await client.token(sub, scopes);
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if ((response.status === 429 || response.status === 503) && attempt < 50) {
      await response.body?.cancel();
      await Bun.sleep(Math.min(10, Number(response.headers.get("retry-after") ?? "1")) * 1000);
      continue;
    }
    if (response.status >= 300)
      throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? undefined : await response.json();
  }
}

// ---- The shop: plenty of stock and money, so every order confirms; customers each with their own token ----
const skus = Array.from({ length: Number(flags.skus) }, (_, i) => ({
  sku: `s${i}`,
  priceCents: 100 + ((i * 37) % 4900),
}));
const customers = Array.from({ length: Number(flags.customers) }, (_, i) => `c${i}`);
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await task(items[next++] as T);
    }),
  );
}
await pool(skus, 8, (s) =>
  call("seed", ["admin"], "PUT", `/v1/inventory/${s.sku}`, { available: STOCK, priceCents: s.priceCents }),
);
await pool(customers, 8, (c) =>
  call("seed-billing", ["admin"], "PUT", `/v1/accounts/${c}`, { balanceCents: BALANCE }),
);
await Promise.all(customers.map((c) => client.token(c, CUSTOMER_SCOPES)));

// ---- Webhooks: every order.* event, by webhook-id and by order ----
const webhookIds = new Set<string>();
const eventsByOrder = new Map<string, { type: string; at: number }>();
let duplicateWebhookIds = 0;
let duplicateOrderEvents = 0;
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    const at = performance.now();
    const id = request.headers.get("webhook-id") ?? "";
    const event = (await request.json()) as { type?: string; data?: { orderId?: string } };
    if (webhookIds.has(id)) duplicateWebhookIds++;
    else {
      webhookIds.add(id);
      const orderId = event.data?.orderId;
      if (orderId && event.type) {
        if (eventsByOrder.has(orderId)) duplicateOrderEvents++;
        else eventsByOrder.set(orderId, { type: event.type, at });
      }
    }
    return new Response(null, { status: 204 });
  },
});
await call("seed-hooks", ["admin"], "POST", "/v1/webhooks/subscriptions", {
  url: `http://127.0.0.1:${receiver.port}/hook`,
  events: ["order.confirmed", "order.rejected", "order.cancelled"],
});

// ---- Placement: one POST, recorded; a timeout is retried later with the same Idempotency-Key ----
interface Placement {
  key: string;
  customerId: string;
  items: Array<{ sku: string; quantity: number }>;
  scheduledAt: number;
  answeredAt?: number;
  status: number;
  orderId?: string;
  problemJson?: boolean;
  retryAfter?: string | null;
  phase: "warmup" | "burst" | "after";
}
const placements: Placement[] = [];
const next = seededRandom(7);
const runId = Date.now().toString(36);
function newPlacement(phase: Placement["phase"], scheduledAt: number): Placement {
  const lines = 1 + Math.floor(next() * 3);
  const chosen = new Set<string>();
  while (chosen.size < lines) chosen.add((skus[Math.floor(next() * skus.length)] as { sku: string }).sku);
  return {
    key: `${runId}-${placements.length}`,
    customerId: customers[Math.floor(next() * customers.length)] as string,
    items: [...chosen].map((sku) => ({ sku, quantity: 1 + Math.floor(next() * 2) })),
    scheduledAt,
    status: 0,
    phase,
  };
}
async function post(p: Placement): Promise<void> {
  const token = await client.token(p.customerId, CUSTOMER_SCOPES);
  const r = await timed(
    `${base}/v1/orders`,
    {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        "idempotency-key": p.key,
      },
      body: JSON.stringify({ customerId: p.customerId, items: p.items }),
    },
    REQUEST_TIMEOUT_MS,
  );
  p.status = r.status;
  p.answeredAt = performance.now();
  if (r.status === 202) p.orderId = (JSON.parse(r.text) as { orderId: string }).orderId;
  else if (r.headers) {
    p.problemJson = r.headers.get("content-type")?.startsWith("application/problem+json") ?? false;
    p.retryAfter = r.headers.get("retry-after");
  }
}
async function openLoop(phase: Placement["phase"], perSecond: number, ms: number): Promise<Promise<void>[]> {
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; ; i++) {
    const due = start + (i * 1000) / perSecond;
    if (due >= start + ms) break;
    const wait = due - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    const p = newPlacement(phase, due);
    placements.push(p);
    inFlight.push(post(p));
  }
  return inFlight;
}

// ---- Sampling: probes, reads, /metrics and RSS, all through the run ----
const probes: Array<{ at: number; path: string; status: number; ms: number }> = [];
const reads: Array<{ at: number; status: number; ms: number }> = [];
const samples: Array<Record<string, number>> = [];
/** Alongside each sample: the node's CPU (`node-cpu.ts`), to tell a node costing more per delivery from one starved. */
const cpuSamples: Array<(CpuSample & { at: number }) | undefined> = [];
const phaseAt: Record<string, number> = {};
function metric(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      sum = (sum ?? 0) + Number(line.split(" ").at(-1));
  }
  return sum;
}
function rssMB(): number {
  try {
    const line = readFileSync(`/proc/${child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
    return round(Number(line?.[1] ?? 0) / 1024, 1);
  } catch {
    return 0;
  }
}
let sampling = true;
const samplers = [
  (async () => {
    while (sampling) {
      const at = performance.now();
      const path = probes.length % 2 === 0 ? "/healthz" : "/readyz";
      void timed(`${base}${path}`).then((r) => probes.push({ at, path, status: r.status, ms: r.ms }));
      await Bun.sleep(250);
    }
  })(),
  (async () => {
    while (sampling) {
      await Bun.sleep(1000 / readRate);
      const accepted = placements.filter((p) => p.orderId);
      const pick = accepted[Math.floor(Math.random() * accepted.length)];
      if (!pick?.orderId) continue;
      const at = performance.now();
      void client
        .token(pick.customerId, CUSTOMER_SCOPES)
        .then((token) =>
          timed(`${base}/v1/orders/${pick.orderId}`, { headers: { authorization: `Bearer ${token}` } }),
        )
        .then((r) => reads.push({ at, status: r.status, ms: r.ms }));
    }
  })(),
  (async () => {
    const metricsToken = await client.token("metrics", ["admin"]);
    while (sampling) {
      const at = performance.now();
      const r = await timed(`${base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
      samples.push({
        t: round((at - (phaseAt.burst ?? startedAt)) / 1000, 1),
        rssMB: rssMB(),
        metricsMs: round(r.ms),
        metricsStatus: r.status,
        brokerPending: metric(r.text, "edgewise_broker_messages_pending") ?? -1,
        deliveries: metric(r.text, "edgewise_broker_deliveries_total") ?? -1,
        loadAverage1m: round(os.loadavg()[0] as number, 2),
        actorOutboxPending: metric(r.text, "edgewise_outbox_pending") ?? -1,
        billingOutboxPending: metric(r.text, "edgewise_billing_outbox_pending") ?? -1,
        mailboxDepth: metric(r.text, "edgewise_actor_mailbox_depth") ?? -1,
        eventLoopLagMs: round((metric(r.text, "edgewise_event_loop_lag_seconds") ?? -0.001) * 1000),
        accepted: placements.filter((p) => p.status === 202).length,
        terminal: eventsByOrder.size,
      });
      const cpu = sampleCpu(child.pid);
      cpuSamples.push(cpu && { ...cpu, at: performance.now() });
      await Bun.sleep(2000);
    }
  })(),
];

// ---- The run: warm-up, burst, drain, after ----
log("warm-up: 20 orders/s for 5 s");
phaseAt.warmup = performance.now();
await Promise.all(await openLoop("warmup", 20, 5000));
await Bun.sleep(3000);
phaseAt.burst = performance.now();
log(`burst: ${rate} orders/s for ${seconds} s`);
const burstPosts = await openLoop("burst", rate, seconds * 1000);
phaseAt.burstEnd = performance.now();
log("burst offered; waiting for its answers");
await Promise.all(burstPosts);
phaseAt.answered = performance.now();
// An unanswered POST is what a client retries with the same Idempotency-Key: did the node keep it?
const unanswered = placements.filter((p) => p.status <= 0);
for (const p of unanswered) {
  await post(p);
}
log(`draining (${unanswered.length} timed-out POSTs retried)`);
const accepted = () => placements.filter((p) => p.orderId);
for (;;) {
  const last = samples.at(-1);
  const allSettled = accepted().every((p) => eventsByOrder.has(p.orderId as string));
  if (
    allSettled &&
    last &&
    last.brokerPending === 0 &&
    (last.actorOutboxPending ?? 0) <= 0 &&
    (last.billingOutboxPending ?? 0) <= 0
  )
    break;
  if (performance.now() - phaseAt.burstEnd > drainMs) {
    log("the backlog did not drain in time");
    break;
  }
  await Bun.sleep(500);
}
phaseAt.drained = performance.now();
log(
  `drained ${round((phaseAt.drained - phaseAt.burstEnd) / 1000, 1)} s after the burst; after: ${afterRate} orders/s for 10 s`,
);
phaseAt.after = performance.now();
await Promise.all(await openLoop("after", afterRate, 10_000));
const afterSettle = performance.now();
while (
  accepted().some((p) => !eventsByOrder.has(p.orderId as string)) &&
  performance.now() - afterSettle < 60_000
)
  await Bun.sleep(200);
sampling = false;
await Promise.all(samplers);
phaseAt.end = performance.now();

// ---- Checks: every accepted order terminal once (GET, webhooks), then the invariants on a node of this process ----
const views = new Map<string, OrderView>();
await pool(accepted(), 8, async (p) => {
  views.set(
    p.orderId as string,
    (await call(p.customerId, CUSTOMER_SCOPES, "GET", `/v1/orders/${p.orderId}`)) as OrderView,
  );
});
const orderIds = new Set(accepted().map((p) => p.orderId as string));
const notTerminal = [...views.values()].filter((v) => v.status === "pending").length;
const webhookMismatch = [...views.values()].filter(
  (v) => eventsByOrder.get(v.orderId)?.type !== `order.${v.status}`,
).length;
child.kill("SIGTERM");
const exitCode = await child.exited;
const checker = await startNode({
  config: parseConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    EDGEWISE_DATA_DIR: dataDir,
    RATE_LIMIT: "1000000000/1s",
  }),
  ...referenceSystem(),
  log: () => {},
});
let invariants: { violations: string[]; outcomes: Record<string, number> };
let queueLeft: Record<string, number>;
try {
  const checkClient = new CommerceClient({ base: checker.url, jwtSecret });
  const world: World = {
    skus: skus.map((s) => ({ sku: s.sku, stocked: STOCK, priceCents: s.priceCents })),
    customers: customers.map((id) => ({ id, funded: BALANCE })),
  };
  invariants = await checkInvariants(checkClient, world, [...views.values()], checker.sql as never);
  const [queued] = await checker.sql`SELECT count(*)::int AS n FROM qstash_messages`;
  const [dead] = await checker.sql`SELECT count(*)::int AS n FROM qstash_dlq`;
  const [billing] = await checker.sql`SELECT count(*)::int AS n FROM billing_outbox`;
  queueLeft = { brokerQueued: queued?.n, deadLettered: dead?.n, billingOutbox: billing?.n };
} finally {
  await checker.stop();
  receiver.stop(true);
  rmSync(dataDir, { recursive: true, force: true });
}

/** The node's log lines at level error or above, and a few of them. */
function nodeErrors() {
  const lines = [nodeLogPath, `${nodeLogPath}.err`]
    .flatMap((path) => (existsSync(path) ? readFileSync(path, "utf8").split("\n") : []))
    .filter((line) => /"level":"(error|fatal)"|^error|\berror:/i.test(line));
  for (const path of [nodeLogPath, `${nodeLogPath}.err`]) rmSync(path, { force: true });
  return { nodeErrorLines: lines.length, nodeErrorSamples: lines.slice(0, 5).map((l) => l.slice(0, 400)) };
}

// ---- The report ----
const inPhase = <T extends { at: number }>(list: T[], from: number, to: number) =>
  list.filter((x) => x.at >= from && x.at < to);
const latencies = (list: Array<{ ms: number }>) => percentiles(list.map((x) => x.ms));
const statuses = (list: Array<{ status: number }>) =>
  list.reduce<Record<string, number>>((acc, x) => {
    const key = x.status === -1 ? "timeout" : x.status === 0 ? "error" : String(x.status);
    acc[key] = (acc[key] ?? 0) + 1;
    return acc;
  }, {});
const probeReport = (from: number, to: number) => {
  const window = inPhase(probes, from, to);
  return Object.fromEntries(
    ["/healthz", "/readyz"].map((path) => {
      const mine = window.filter((p) => p.path === path);
      return [path, { ...latencies(mine), statuses: statuses(mine) }];
    }),
  );
};
const burst = placements.filter((p) => p.phase === "burst");
const settleMs = (list: Placement[]) =>
  percentiles(
    list
      .filter((p) => p.orderId && eventsByOrder.has(p.orderId))
      .map((p) => (eventsByOrder.get(p.orderId as string)?.at as number) - p.scheduledAt),
  );
const refused = burst.filter((p) => p.status !== 202);
/**
 * What the node did with the CPU it got, between two samples: deliveries a second (its throughput, whatever order
 * the saga's steps come in), CPU per delivery (up with the backlog would be congestion collapse) and the main
 * thread's time running and waiting for a core (other processes on the machine).
 */
const workBetween = (i: number, j: number) => {
  const [a, b] = [cpuSamples[i], cpuSamples[j]];
  const [sa, sb] = [samples[i], samples[j]];
  if (!a || !b || !sa || !sb || (sa.deliveries ?? -1) < 0 || b.at <= a.at) return null;
  const deliveries = (sb.deliveries as number) - (sa.deliveries as number);
  const wallMs = b.at - a.at;
  return {
    deliveries,
    deliveriesPerSecond: round((deliveries / wallMs) * 1000),
    settledPerSecond: round((((sb.terminal as number) - (sa.terminal as number)) / wallMs) * 1000, 1),
    ...cpuBetween(a, b, wallMs, deliveries),
  };
};
const workIn = (from: number, to: number) => {
  const inside = cpuSamples.flatMap((c, i) => (c && c.at >= from && c.at <= to ? [i] : []));
  return inside.length >= 2 ? workBetween(inside[0] as number, inside.at(-1) as number) : null;
};
const workBySample = samples.slice(1).map((s, n) => ({
  t: s.t,
  brokerPending: s.brokerPending,
  loadAverage1m: s.loadAverage1m,
  ...workBetween(n, n + 1),
}));
const rss = samples.map((s) => s.rssMB ?? 0);
const result = {
  bench: "overload",
  machine: { cpus: os.cpus().length, bun: Bun.version, loadAverageEnd: os.loadavg().map((l) => round(l, 2)) },
  setup: {
    node: "edge/entries/bun.ts (npm start) in a child process, embedded defaults, fresh data dir, 127.0.0.1",
    env: extraEnv,
    offered: { rate, seconds, orders: burst.length },
    customers: customers.length,
    skus: skus.length,
    client: "open loop from this process, each customer with its own JWT (default RATE_LIMIT 600/60s each)",
  },
  burst: {
    accepted: burst.filter((p) => p.status === 202).length,
    refusedByStatus: statuses(refused),
    refusedProblemJson: refused.filter((p) => p.problemJson).length,
    refusedWithRetryAfter: refused.filter((p) => p.retryAfter).length,
    postLatencyMs: percentiles(burst.map((p) => (p.answeredAt as number) - p.scheduledAt)),
    acceptedRate: round(burst.filter((p) => p.status === 202).length / seconds),
    settleFromScheduledMs: settleMs(burst),
    probes: probeReport(phaseAt.burst, phaseAt.burstEnd),
    work: workIn(phaseAt.burst, phaseAt.burstEnd),
    readsGetOrder: {
      ...latencies(inPhase(reads, phaseAt.burst, phaseAt.burstEnd)),
      statuses: statuses(inPhase(reads, phaseAt.burst, phaseAt.burstEnd)),
    },
  },
  drain: {
    secondsAfterBurst: round((phaseAt.drained - phaseAt.burstEnd) / 1000, 1),
    timedOutPostsRetried: unanswered.length,
    timedOutPostsAcceptedOnRetry: unanswered.filter((p) => p.status === 202).length,
    probes: probeReport(phaseAt.burstEnd, phaseAt.drained),
    work: workIn(phaseAt.burstEnd, phaseAt.drained),
    readsGetOrder: {
      ...latencies(inPhase(reads, phaseAt.burstEnd, phaseAt.drained)),
      statuses: statuses(inPhase(reads, phaseAt.burstEnd, phaseAt.drained)),
    },
  },
  after: {
    settleFromScheduledMs: settleMs(placements.filter((p) => p.phase === "after")),
    postLatencyMs: percentiles(
      placements.filter((p) => p.phase === "after").map((p) => (p.answeredAt as number) - p.scheduledAt),
    ),
    probes: probeReport(phaseAt.after, phaseAt.end),
    work: workIn(phaseAt.after, phaseAt.end),
  },
  warmup: { settleFromScheduledMs: settleMs(placements.filter((p) => p.phase === "warmup")) },
  memory: { rssMBStart: rss[0], rssMBPeak: Math.max(...rss), rssMBEnd: rss.at(-1) },
  samples,
  workBySample,
  check: {
    accepted: orderIds.size,
    notTerminal,
    webhookDisagreesWithOrder: webhookMismatch,
    duplicateWebhookIds,
    duplicateOrderEvents,
    eventsForUnknownOrders: [...eventsByOrder.keys()].filter((id) => !orderIds.has(id)).length,
    invariantViolations: invariants.violations.slice(0, 10),
    violationCount: invariants.violations.length,
    outcomes: invariants.outcomes,
    queueLeft,
    nodeExitCode: exitCode,
    ...nodeErrors(),
  },
  totalSeconds: round((performance.now() - startedAt) / 1000, 1),
};
console.log(JSON.stringify(result, null, 2));
process.exit(0);
