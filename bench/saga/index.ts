// The order saga end to end on the embedded stack: orders/s from placement to `confirmed`, and its latency.
//
//   npm run bench:saga                         # = bun bench/saga/index.ts
//   bun bench/saga/index.ts --seconds 10 --concurrency 64 --orders 20000 --detect webhook
//
// One JSON object on stdout; progress on stderr. See bench/README.md, "saga/index.ts".
import { readFileSync } from "node:fs";
import os from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { Api, pool, startEmbeddedNode } from "../../deploy/demo/support.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { Probe, type Steps } from "./probe.ts";
import {
  Confirmations,
  orderMix,
  percentiles,
  round,
  SHOP_STOCK,
  seedShop,
  webhookReceiver,
} from "./shop.ts";
import { SqlProbe } from "./sql-probe.ts";

const { values: flags } = parseArgs({
  options: {
    /** Length of the closed-loop run and of the open-loop run, each. */
    seconds: { type: "string", default: "10" },
    /** Placers in the closed loop; each places an order and waits for its confirmation before the next. */
    concurrency: { type: "string", default: "64" },
    /** At most this many orders in the closed loop (it stops at whichever of --seconds and --orders is first). */
    orders: { type: "string", default: "20000" },
    /** Warm-up orders before the measured runs (16 at a time). */
    warmup: { type: "string", default: "300" },
    /** The open loop's rate in orders/s; default: half of the closed loop's measured max. */
    rate: { type: "string" },
    skus: { type: "string", default: "200" },
    customers: { type: "string", default: "1000" },
    /** How confirmation is seen: `webhook` (order.confirmed on a local receiver), `poll` (GET), `hook` (in process). */
    detect: { type: "string", default: "webhook" },
    /** For comparison only: Postgres instead of the embedded PGlite (a schema of its own, dropped at the end). */
    "database-url": { type: "string" },
    /** The embedded PGlite's durability (EDGEWISE_PGLITE_SYNC): FULL, the default, fsyncs every commit. */
    "pglite-sync": { type: "string", default: "FULL" },
    /** Do not read the SQL PGlite runs (bench/saga/sql-probe.ts). */
    "no-sql": { type: "boolean", default: false },
    /** Skip the open-loop run. */
    "no-open": { type: "boolean", default: false },
  },
});

const seconds = Number(flags.seconds);
const concurrency = Number(flags.concurrency);
const maxOrders = Number(flags.orders);
const warmupOrders = Number(flags.warmup);
const skuCount = Number(flags.skus);
const customerCount = Number(flags.customers);
const detect = flags.detect as "webhook" | "poll" | "hook";
if (!["webhook", "poll", "hook"].includes(detect)) throw new Error("--detect is webhook, poll or hook");
/** Longest wait for an order's confirmation, and for the queue to go quiet. */
const CONFIRM_TIMEOUT_MS = 30_000;

const log = (line: string) => console.error(`[saga] ${line}`);
/** A phase's span as epoch milliseconds, which is how a CPU profile's timestamps can be matched. */
const window = (from: number, to: number) =>
  `--from ${Math.round(performance.timeOrigin + from)} --to ${Math.round(performance.timeOrigin + to)}`;
/** Busy and total jiffies of the whole machine (Linux /proc/stat), to tell a busy machine from a busy bench. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    const total = ticks.reduce((sum, n) => sum + n, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

interface OrderRecord {
  orderId: string;
  items: Array<{ sku: string; quantity: number }>;
  /** When the POST was sent, when it was due (open loop; else when sent), when it returned, when confirmed. */
  sentAt: number;
  scheduledAt: number;
  placedAt: number;
  confirmedAt?: number;
  failed?: string;
}

/** What this run's numbers say, in words (the profile's top consumers are in bench/README.md). */
function notes(
  max: {
    cpu: { processCoresBusy: number };
    deliveries: { perOrder: number; byTarget: Record<string, number> };
  } & {
    steps: Record<string, { mean: number }>;
    latencyMs: { mean: number };
    orders: number;
  },
  half: Record<string, unknown> | undefined,
  cpuMsPerOrder: number,
): string[] {
  const out: string[] = [];
  if (max.cpu.processCoresBusy >= 0.9) {
    out.push(
      `At max, this one process (node, embedded Postgres, broker and client) kept ${max.cpu.processCoresBusy} cores busy: the saga is CPU-bound on its JS thread, where PGlite, SQLite and the broker all run.`,
    );
  }
  const byTarget = max.deliveries.byTarget;
  const stockChanged = Object.entries(byTarget)
    .filter(([key]) => key.endsWith(":StockChanged"))
    .reduce((sum, [, n]) => sum + n, 0);
  const consumers = Object.entries(byTarget)
    .filter(([key]) => /^(projector|activity|cache|webhooks):/.test(key))
    .reduce((sum, [, n]) => sum + n, 0);
  out.push(
    `Each order costs ${max.deliveries.perOrder} queue deliveries; ${round(stockChanged / Math.max(1, max.orders), 1)} of them are StockChanged (to activity and cache) and ${round(consumers / Math.max(1, max.orders), 1)} go to the projector, activity log, read cache and webhooks rather than to the saga's own steps.`,
  );
  const steps = Object.entries(max.steps).sort((a, b) => b[1].mean - a[1].mean);
  const hops = steps
    .filter(([name]) => /relay|broker/.test(name))
    .reduce((sum, [, stat]) => sum + stat.mean, 0);
  out.push(
    `At max, the four queue hops of the saga (relay + broker + delivery) take ${round(hops)} ms of the mean ${round(max.latencyMs.mean)} ms; the turns themselves take a few ms. The slowest step: "${steps[0]?.[0]}" (${steps[0]?.[1].mean} ms mean).`,
  );
  if (half) {
    const halfSteps = half.steps as Record<string, { mean: number }>;
    const halfHops = Object.entries(halfSteps)
      .filter(([name]) => /relay|broker/.test(name))
      .reduce((sum, [, stat]) => sum + stat.mean, 0);
    const halfCpu = half.cpu as { processCoresBusy: number; cpuMsPerOrder: number };
    out.push(
      `At half load, the same four hops take ${round(halfHops)} ms in all (${round(halfHops / 4)} ms each), and the process still keeps ${halfCpu.processCoresBusy} cores busy (${halfCpu.cpuMsPerOrder} ms of CPU per order, against ${cpuMsPerOrder} at max): with fewer messages per batch, the broker and the relays run more statements per order.`,
    );
  }
  const sql = (max as { pgliteSql?: ReturnType<SqlProbe["report"]> }).pgliteSql;
  if (sql) {
    const top = sql.top[0];
    out.push(
      `PGlite ran ${sql.statementsPerOrder} statements per order at max, ${sql.pgliteMsPerOrder} ms of the ${cpuMsPerOrder} ms of CPU per order (not counting the socket and postgres.js around it); the costliest: ${top?.shareOfPglite}% "${top?.sql.slice(0, 80)}".`,
    );
  }
  return out;
}

const loadStart = os.loadavg();
const benchStart = performance.now();
const probe = new Probe();
log(`starting a node on the embedded stack (load average ${loadStart.map((l) => l.toFixed(2)).join(" ")})`);
const databaseUrl = flags["database-url"];
const sqlProbe = databaseUrl || flags["no-sql"] ? undefined : new SqlProbe();
sqlProbe?.install();
const schema = databaseUrl ? `bench_saga_${process.pid}` : undefined;
const embedded = await startEmbeddedNode({
  // The bench's caller is one subject: the per-caller rate limit would be what it measures otherwise.
  env: {
    RATE_LIMIT: "1000000000/1s",
    // The closed loop measures the most the saga settles; admission control (bench/overload) would cap its input.
    EDGEWISE_MAX_QUEUE_DELAY: "0s",
    WEBHOOKS_ALLOW_PRIVATE: "1",
    EDGEWISE_PGLITE_SYNC: flags["pglite-sync"],
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  },
  ...(schema ? { schema } : {}),
  system: probe.wrapSystem(referenceSystem()),
  log: (line) => log(`[edgewise] ${line}`),
});
const { node } = embedded;
if (!node.host || !node.broker) {
  await embedded.stop();
  throw new Error("the embedded node has no local host or no embedded broker");
}
probe.wrapHost(node.host);
const api = new Api(embedded.url, embedded.token);
const confirmations = new Confirmations();
const receiver = webhookReceiver(confirmations);

const result: Record<string, unknown> = {};
try {
  // ---- Seed: plenty of stock and money, so every order confirms ----
  const seedStart = performance.now();
  const { skus, customers } = await seedShop(api, skuCount, customerCount);
  const STOCK = SHOP_STOCK;
  if (detect === "webhook") {
    await receiver.subscribe(api);
  } else if (detect === "hook") {
    probe.onCaptured = (orderId, at) => confirmations.settle(orderId, at);
  }
  log(
    `seeded ${skuCount} skus and ${customerCount} accounts in ${round((performance.now() - seedStart) / 1000, 2)} s`,
  );

  const newOrder = orderMix({ skus, customers });
  const all: OrderRecord[] = [];

  async function waitConfirmed(record: OrderRecord): Promise<void> {
    if (detect === "poll") {
      const deadline = performance.now() + CONFIRM_TIMEOUT_MS;
      while (performance.now() < deadline) {
        const order = await api.getOrder(record.orderId);
        if (order.status !== "pending") {
          record.confirmedAt = performance.now();
          if (order.status !== "confirmed") record.failed = `${order.status} ${order.reason ?? ""}`.trim();
          return;
        }
        await Bun.sleep(20);
      }
      record.failed = "timeout";
      return;
    }
    const seen = await confirmations.wait(record.orderId, CONFIRM_TIMEOUT_MS);
    if (!seen) record.failed = "timeout";
    else {
      record.confirmedAt = seen.at;
      if (seen.failed) record.failed = seen.failed;
    }
  }

  async function place(scheduledAt?: number): Promise<OrderRecord> {
    const order = newOrder();
    const sentAt = performance.now();
    const { orderId } = await api.placeOrder(order.customerId, order.items);
    const record: OrderRecord = {
      orderId,
      items: order.items,
      sentAt,
      // Sent up to 1 ms early (the open loop does not sleep less): count from the send then, never from later.
      scheduledAt: Math.min(scheduledAt ?? sentAt, sentAt),
      placedAt: performance.now(),
    };
    all.push(record);
    return record;
  }

  /** Waits until the broker has delivered nothing new for 300 ms: the trailing events of the last orders. */
  async function quiet(): Promise<void> {
    const deadline = performance.now() + CONFIRM_TIMEOUT_MS;
    let last = node.broker?.delivered() ?? 0;
    let stableSince = performance.now();
    while (performance.now() < deadline) {
      await Bun.sleep(50);
      const now = node.broker?.delivered() ?? 0;
      if (now !== last) {
        last = now;
        stableSince = performance.now();
      } else if (performance.now() - stableSince >= 300) return;
    }
  }

  /** Postgres's own counters: rows written and scans per table, and commits. */
  type PgStats = Map<string, { ins: number; upd: number; del: number; seq: number; idx: number }> & {
    commits?: number;
  };
  async function pgStats(): Promise<PgStats> {
    const sql = node.sql;
    await sql`SELECT pg_stat_clear_snapshot()`;
    const rows = await sql<
      { relname: string; ins: string; upd: string; del: string; seq: string; idx: string }[]
    >`
      SELECT relname, n_tup_ins::text AS ins, n_tup_upd::text AS upd, n_tup_del::text AS del,
        seq_scan::text AS seq, coalesce(idx_scan, 0)::text AS idx
      FROM pg_stat_user_tables`;
    const [db] = await sql<{ commits: string }[]>`
      SELECT xact_commit::text AS commits FROM pg_stat_database WHERE datname = current_database()`;
    const stats: PgStats = new Map(
      rows.map((r) => [
        r.relname,
        {
          ins: Number(r.ins),
          upd: Number(r.upd),
          del: Number(r.del),
          seq: Number(r.seq),
          idx: Number(r.idx),
        },
      ]),
    );
    stats.commits = Number(db?.commits ?? 0);
    return stats;
  }
  function pgDelta(before: PgStats, after: PgStats, orders: number) {
    const per = (n: number) => round(n / Math.max(1, orders), 2);
    const tables = [...after]
      .map(([name, a]) => {
        const b = before.get(name) ?? { ins: 0, upd: 0, del: 0, seq: 0, idx: 0 };
        return {
          table: name,
          rowsWrittenPerOrder: per(a.ins - b.ins + a.upd - b.upd + a.del - b.del),
          insertsPerOrder: per(a.ins - b.ins),
          updatesPerOrder: per(a.upd - b.upd),
          deletesPerOrder: per(a.del - b.del),
          seqScansPerOrder: per(a.seq - b.seq),
          indexScansPerOrder: per(a.idx - b.idx),
        };
      })
      .filter((t) => t.rowsWrittenPerOrder > 0 || t.seqScansPerOrder > 0 || t.indexScansPerOrder > 0)
      .sort((x, y) => y.rowsWrittenPerOrder - x.rowsWrittenPerOrder);
    return { commitsPerOrder: per((after.commits ?? 0) - (before.commits ?? 0)), tables };
  }

  interface PhaseMeasure {
    records: OrderRecord[];
    startedAt: number;
    cpu: NodeJS.CpuUsage;
    machine: { busy: number; total: number } | undefined;
    delivered: number;
  }
  const begin = (): PhaseMeasure => {
    probe.resetCounts();
    sqlProbe?.reset();
    return {
      records: [],
      startedAt: performance.now(),
      cpu: process.cpuUsage(),
      machine: machineTicks(),
      delivered: node.broker?.delivered() ?? 0,
    };
  };
  /** The whole machine's cores busy since the phase began (every process, this bench's included). */
  const machineBusy = (phase: PhaseMeasure) => {
    const now = machineTicks();
    if (!now || !phase.machine) return undefined;
    return round(
      ((now.busy - phase.machine.busy) / Math.max(1, now.total - phase.machine.total)) * os.cpus().length,
      2,
    );
  };

  /** Where the time goes, per order: each step of the saga, from the in-process timestamps. */
  function breakdown(records: OrderRecord[]) {
    const segments: Record<string, number[]> = {
      "1 POST returned → OrderPlaced reaches inventory (order outbox relay, broker)": [],
      "2 inventory turns (reserve, SQLite commit)": [],
      "3 → last StockReserved reaches the order (inventory outbox relay, broker)": [],
      "4 order turn + → PaymentRequested reaches billing (relay, broker)": [],
      "5 billing (Postgres transaction: debit, journal, outbox)": [],
      "6 → PaymentCaptured reaches the order (billing outbox relay, broker)": [],
      "7 order turn: confirmed, OrderConfirmed published (SQLite commit)": [],
      "8 confirmed → seen by the client": [],
    };
    const values = Object.values(segments);
    for (const record of records) {
      const s: Steps | undefined = probe.steps.get(record.orderId);
      if (!s || record.confirmedAt === undefined || record.failed) continue;
      const points = [
        record.placedAt,
        s.inventoryStart,
        s.inventoryEnd,
        s.reservedStart,
        s.billingStart,
        s.billingEnd,
        s.capturedStart,
        s.capturedEnd,
        record.confirmedAt,
      ];
      if (points.some((p) => p === undefined)) continue;
      for (let i = 0; i < values.length; i++)
        (values[i] as number[]).push((points[i + 1] as number) - (points[i] as number));
    }
    return Object.fromEntries(Object.entries(segments).map(([name, list]) => [name, percentiles(list)]));
  }

  function summarize(phase: PhaseMeasure, endedAt: number, cpu: NodeJS.CpuUsage, machineCoresBusy?: number) {
    const confirmed = phase.records.filter((r) => r.confirmedAt !== undefined && !r.failed);
    const failed = phase.records.filter((r) => r.failed);
    const lastConfirmed = Math.max(...confirmed.map((r) => r.confirmedAt as number));
    const wallS = (lastConfirmed - phase.startedAt) / 1000;
    const deliveries = Object.fromEntries([...probe.deliveries].sort((a, b) => b[1] - a[1]));
    const deliveryTotal = [...probe.deliveries.values()].reduce((s, n) => s + n, 0);
    return {
      orders: phase.records.length,
      confirmed: confirmed.length,
      failed: failed.length,
      ...(failed.length > 0 ? { failures: [...new Set(failed.map((r) => r.failed))] } : {}),
      firstPlacementToLastConfirmationS: round(wallS, 3),
      ordersPerSecond: round(confirmed.length / wallS),
      latencyMs: percentiles(confirmed.map((r) => (r.confirmedAt as number) - r.placedAt)),
      /** Confirmations per second in each whole 5 s of the phase: a falling line means the run slows down. */
      confirmedPerSecondBy5s: Array.from({ length: Math.floor(wallS / 5) }, (_, i) => {
        const from = phase.startedAt + i * 5000;
        const inBucket = confirmed.filter(
          (r) => (r.confirmedAt as number) >= from && (r.confirmedAt as number) < from + 5000,
        ).length;
        return round(inBucket / 5);
      }),
      postMs: percentiles(phase.records.map((r) => r.placedAt - r.sentAt)),
      cpu: {
        processCpuS: round((cpu.user + cpu.system) / 1e6, 2),
        wallS: round((endedAt - phase.startedAt) / 1000, 2),
        processCoresBusy: round((cpu.user + cpu.system) / 1e3 / (endedAt - phase.startedAt), 2),
        cpuMsPerOrder: round((cpu.user + cpu.system) / 1e3 / Math.max(1, phase.records.length), 2),
        machineCoresBusy,
      },
      deliveries: {
        brokerDelivered2xx: (node.broker?.delivered() ?? 0) - phase.delivered,
        perOrder: round(deliveryTotal / Math.max(1, phase.records.length), 2),
        byTarget: deliveries,
      },
      steps: breakdown(confirmed),
      ...(sqlProbe ? { pgliteSql: sqlProbe.report(phase.records.length) } : {}),
    };
  }

  // ---- Idle: what the node costs doing nothing (its polling loops) ----
  const idleCpu = process.cpuUsage();
  const idleStart = performance.now();
  await Bun.sleep(2000);
  const idleUsage = process.cpuUsage(idleCpu);
  result.idle = {
    seconds: round((performance.now() - idleStart) / 1000, 2),
    processCoresBusy: round((idleUsage.user + idleUsage.system) / 1e3 / (performance.now() - idleStart), 3),
  };

  // ---- Warm-up ----
  log(`warm-up: ${warmupOrders} orders, 16 at a time`);
  await pool(Array.from({ length: warmupOrders }), 16, async () => waitConfirmed(await place()));
  await quiet();

  // ---- (a)+(b) Closed loop: each placer places, waits for the confirmation, and places the next ----
  log(
    `closed loop: ${concurrency} placers for ${seconds} s (at most ${maxOrders} orders), confirmation by ${detect}`,
  );
  const pgBefore = await pgStats();
  const closed = begin();
  const stopAt = closed.startedAt + seconds * 1000;
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < stopAt && started < maxOrders) {
        started++;
        const record = await place();
        closed.records.push(record);
        await waitConfirmed(record);
      }
    }),
  );
  const closedEnd = performance.now();
  const closedCpu = process.cpuUsage(closed.cpu);
  const closedMachine = machineBusy(closed);
  log(`closed loop window (for bench/saga/profile.ts --from/--to): ${window(closed.startedAt, closedEnd)}`);
  await quiet();
  const max = {
    concurrency,
    seconds,
    ...summarize(closed, closedEnd, closedCpu, closedMachine),
    postgres: pgDelta(pgBefore, await pgStats(), closed.records.length),
  };
  log(
    `closed loop: ${max.confirmed} confirmed, ${max.ordersPerSecond} orders/s, p50 ${max.latencyMs.p50} ms, p99 ${max.latencyMs.p99} ms`,
  );
  result.max = max;

  // ---- (c) Open loop at half the measured max ----
  let half: Record<string, unknown> | undefined;
  if (!flags["no-open"]) {
    const rate = flags.rate ? Number(flags.rate) : Math.max(1, max.ordersPerSecond / 2);
    log(`open loop: ${round(rate)} orders/s for ${seconds} s`);
    const pgOpenBefore = await pgStats();
    const open = begin();
    const interval = 1000 / rate;
    const pending: Promise<void>[] = [];
    for (let i = 0; ; i++) {
      const due = open.startedAt + i * interval;
      if (due >= open.startedAt + seconds * 1000) break;
      const wait = due - performance.now();
      if (wait > 1) await Bun.sleep(wait);
      pending.push(
        (async () => {
          const record = await place(due);
          open.records.push(record);
          await waitConfirmed(record);
        })(),
      );
    }
    const placingEnded = performance.now();
    await Promise.all(pending);
    const openEnd = performance.now();
    const openCpu = process.cpuUsage(open.cpu);
    const openMachine = machineBusy(open);
    log(`open loop window (for bench/saga/profile.ts --from/--to): ${window(open.startedAt, openEnd)}`);
    await quiet();
    const summary = summarize(open, openEnd, openCpu, openMachine);
    half = {
      targetRate: round(rate),
      placedRate: round(open.records.length / ((placingEnded - open.startedAt) / 1000)),
      seconds,
      ...summary,
      postgres: pgDelta(pgOpenBefore, await pgStats(), open.records.length),
      fromScheduledMs: percentiles(
        open.records
          .filter((r) => r.confirmedAt !== undefined && !r.failed)
          .map((r) => (r.confirmedAt as number) - r.scheduledAt),
      ),
    };
    log(
      `open loop: ${summary.confirmed}/${summary.orders} confirmed, p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms`,
    );
    result.halfLoad = half;
  }

  // ---- The same orders as the public API shows them: activity log and the order's own clock ----
  const sample = closed.records.filter((r) => !r.failed).slice(0, 20);
  const activityMs: number[] = [];
  const orderClockMs: number[] = [];
  const publicErrors: string[] = [];
  for (const record of sample) {
    try {
      const page = await api.call<{ items: Array<{ type: string; time: string }> }>(
        "GET",
        `/v1/activity?subject=${record.orderId}&limit=20`,
      );
      const placed = page.items.find((e) => e.type === "OrderPlaced");
      const confirmedEvent = page.items.find((e) => e.type === "OrderConfirmed");
      if (placed && confirmedEvent)
        activityMs.push(Date.parse(confirmedEvent.time) - Date.parse(placed.time));
      const order = await api.getOrder(record.orderId);
      orderClockMs.push(Date.parse(order.updatedAt) - Date.parse(order.createdAt));
    } catch (error) {
      publicErrors.push(error instanceof Error ? error.message : String(error));
    }
  }

  // ---- Check: every unit sold is an item of a confirmed order (and nothing left reserved) ----
  const expectedSold = new Map<string, number>();
  for (const record of all) {
    if (record.failed || record.confirmedAt === undefined) continue;
    for (const item of record.items)
      expectedSold.set(item.sku, (expectedSold.get(item.sku) ?? 0) + item.quantity);
  }
  let soldMismatches = 0;
  let reservedLeft = 0;
  let checkError: string | undefined;
  try {
    await pool(skus, 16, async (s) => {
      const stock = await api.getInventory(s.sku);
      reservedLeft += stock.reserved;
      if (STOCK - stock.available - stock.reserved !== (expectedSold.get(s.sku) ?? 0)) soldMismatches++;
    });
  } catch (error) {
    checkError = error instanceof Error ? error.message : String(error);
  }

  // Tables as the run leaves them: embedded PGlite is single-user Postgres, so nothing vacuums in the background.
  const tablesAtEnd = (
    await node.sql<
      {
        table: string;
        live: string;
        dead: string;
        kb: string;
        vacuumed: string | null;
        autovacuumed: string | null;
      }[]
    >`
      SELECT relname AS table, n_live_tup::text AS live, n_dead_tup::text AS dead,
        (pg_total_relation_size(relid) / 1024)::text AS kb,
        last_vacuum::text AS vacuumed, last_autovacuum::text AS autovacuumed
      FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC LIMIT 8`
  ).map((r) => ({
    table: r.table,
    liveRows: Number(r.live),
    deadRows: Number(r.dead),
    totalKB: Number(r.kb),
    vacuumed: r.autovacuumed ?? r.vacuumed ?? "never",
  }));

  const loadEnd = os.loadavg();
  const maxRate = max.ordersPerSecond;
  const halfP99 = (half?.latencyMs as { p99: number } | undefined)?.p99;
  Object.assign(result, {
    bench: "saga",
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      bun: Bun.version,
      loadAverageStart: loadStart.map((l) => round(l, 2)),
      loadAverageEnd: loadEnd.map((l) => round(l, 2)),
    },
    setup: {
      stack: databaseUrl
        ? "COMPARISON, not the embedded stack: Postgres at --database-url (a schema of its own), the embedded broker on it, actors in SQLite (FULL), the read cache in memory, one Bun process"
        : `embedded defaults in one Bun process: PGlite (one in-process connection, shared by broker, billing, projections, activity, webhooks; EDGEWISE_PGLITE_SYNC=${flags["pglite-sync"]}), the embedded broker, actors in SQLite (FULL), the read cache in memory`,
      node: "deploy/bun/node.ts startNode + deploy/reference.ts (what `npm start` runs), a fresh temp EDGEWISE_DATA_DIR, 127.0.0.1, RATE_LIMIT lifted, admission control off (EDGEWISE_MAX_QUEUE_DELAY=0s)",
      client: "the same process, over HTTP (fetch) to 127.0.0.1",
      skus: skuCount,
      customers: customerCount,
      order:
        "1-3 distinct skus out of all, 1-2 units each, a random customer; stock and balances never run out",
      method:
        detect === "webhook"
          ? "confirmation = arrival of the order.confirmed webhook (Standard Webhooks POST) on a Bun.serve receiver on 127.0.0.1 in this process; latency from the POST /v1/orders response to that arrival"
          : detect === "poll"
            ? "confirmation = GET /v1/orders/{id} every 20 ms until not pending; latency from the POST /v1/orders response to the GET that saw it"
            : "confirmation = the order's PaymentCaptured turn committed (in-process hook on the actor host); latency from the POST /v1/orders response",
      closedLoop: "each placer places one order, waits for its confirmation, then places the next",
      openLoop: "orders scheduled at a fixed rate, not waiting for one another",
      steps:
        "in-process timestamps: the node's actor host and consumers are wrapped; each step from the previous one, per order (mean, p50, p99)",
      warmupOrders,
    },
    ...result,
    publicApiView: {
      sampleOrders: sample.length,
      activityPlacedToConfirmedMs: percentiles(activityMs),
      orderUpdatedAtMinusCreatedAtMs: percentiles(orderClockMs),
      note: "GET /v1/activity?subject=<orderId>: OrderPlaced.time → OrderConfirmed.time (the actors' clock); GET /v1/orders/{id}: updatedAt − createdAt",
      ...(publicErrors.length > 0 ? { errors: [...new Set(publicErrors)].slice(0, 3) } : {}),
    },
    tablesAtEnd,
    check: {
      ordersPlaced: all.length,
      ordersConfirmed: all.filter((r) => !r.failed && r.confirmedAt !== undefined).length,
      notConfirmed: all.filter((r) => r.failed).length,
      duplicateWebhooks: confirmations.duplicates,
      webhookRequests: receiver.requests(),
      skusWhereSoldDiffersFromConfirmedItems: soldMismatches,
      unitsStillReserved: reservedLeft,
      ...(checkError ? { error: checkError } : {}),
    },
    goal: {
      throughput: { target: "≥ 200 orders/s", got: maxRate, met: maxRate >= 200 },
      halfLoadP99: {
        target: "p99 < 500 ms at half the max rate",
        rate: half?.targetRate,
        got: halfP99,
        met: halfP99 !== undefined && halfP99 < 500,
      },
    },
    notes: notes(max, half, max.cpu.cpuMsPerOrder),
    totalSeconds: round((performance.now() - benchStart) / 1000, 1),
  });
} finally {
  receiver.stop();
  await embedded.stop();
  if (databaseUrl && schema) {
    const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
    try {
      await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
    } finally {
      await admin.end({ timeout: 5 });
    }
  }
}
console.log(JSON.stringify(result, null, 2));
