// Soak: one node on embedded defaults under a steady open loop of orders and reads; what grows, and how fast.
//
//   bun bench/soak/index.ts                          # 15 orders/s for 5 minutes, a sample every 30 s
//   bun bench/soak/index.ts --rate 15 --minutes 30 --sample-seconds 60
//
// One JSON object on stdout (the samples, growth per hour, the end checks); progress on stderr. See
// bench/README.md, "soak/index.ts".
import { heapStats } from "bun:jsc";
import { Database } from "bun:sqlite";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Api, pool, startEmbeddedNode } from "../../deploy/demo/support.ts";
import { backlog, checkInvariants } from "../../test/chaos/invariants.ts";
import { CommerceClient, type OrderView } from "../../test/commerce/client.ts";
import {
  Confirmations,
  orderMix,
  percentiles,
  round,
  SHOP_BALANCE,
  SHOP_STOCK,
  seedShop,
  webhookReceiver,
} from "../saga/shop.ts";

const { values: flags } = parseArgs({
  options: {
    /** Orders placed per second (open loop: on schedule, whether or not earlier ones are done). */
    rate: { type: "string", default: "15" },
    /** How long orders are placed; the run then waits for the last ones and checks. */
    minutes: { type: "string", default: "5" },
    /** A sample every this many seconds. */
    "sample-seconds": { type: "string", default: "30" },
    /** Reads per second beside the orders: GET order, inventory, list and search orders, activity. */
    reads: { type: "string", default: "5" },
    skus: { type: "string", default: "200" },
    customers: { type: "string", default: "1000" },
  },
});
const rate = Number(flags.rate);
const minutes = Number(flags.minutes);
const sampleMs = Number(flags["sample-seconds"]) * 1000;
const readRate = Number(flags.reads);
if (!(rate > 0 && minutes > 0 && minutes <= 24 * 60 && sampleMs >= 1000))
  throw new Error("--rate > 0, 0 < --minutes <= 1440, --sample-seconds >= 1");
const CONFIRM_TIMEOUT_MS = 60_000;
const log = (line: string) => console.error(`[soak] ${line}`);
const MB = 1024 * 1024;

// ---- The node: what `npm start` runs, in a fresh temp data dir, in this process ----
const loadStart = os.loadavg();
const embedded = await startEmbeddedNode({
  env: { RATE_LIMIT: "1000000000/1s", WEBHOOKS_ALLOW_PRIVATE: "1" },
  log: (line) => log(`[edgewise] ${line}`),
});
const { node, dataDir } = embedded;
const api = new Api(embedded.url, embedded.token);
/** The end checks' client (test/chaos's), with the JWT secret the node generated into its data dir. */
const jwtSecret = readFileSync(join(dataDir, "jwt-secret"), "utf8").trim();
const client = new CommerceClient({ base: embedded.url, jwtSecret });
const confirmations = new Confirmations();
const receiver = webhookReceiver(confirmations);
log(
  `node at ${embedded.url}, data in ${dataDir} (load average ${loadStart.map((l) => l.toFixed(2)).join(" ")})`,
);

/** Bytes on disk under `path` (allocated blocks, so a sparse or preallocated file counts what it holds). */
function du(path: string): number {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.blocks * 512;
  return readdirSync(path).reduce((sum, name) => sum + du(join(path, name)), stat.blocks * 512);
}

/** The data dir in MB: each top-level entry, and inside PGlite's directory its WAL and table files apart. */
function diskBreakdown() {
  const parts: Record<string, number> = {};
  for (const name of readdirSync(dataDir)) {
    const path = join(dataDir, name);
    if (lstatSync(path).isDirectory() && existsSync(join(path, "pg_wal"))) {
      const wal = du(join(path, "pg_wal"));
      const base = du(join(path, "base"));
      parts[`${name}/pg_wal`] = wal;
      parts[`${name}/base`] = base;
      parts[`${name}/other`] = du(path) - wal - base;
    } else parts[name] = du(path);
  }
  const total = Object.values(parts).reduce((s, n) => s + n, 0);
  return {
    totalMB: round(total / MB, 2),
    byPartMB: Object.fromEntries(
      Object.entries(parts)
        .filter(([, n]) => n >= 64 * 1024)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => [k, round(n / MB, 3)]),
    ),
  };
}

/** Every Postgres table (the broker's and the application's): exact rows, dead rows, size. */
async function postgresTables() {
  const stats = await node.sql<{ table: string; dead: string; kb: string }[]>`
    SELECT relname AS table, n_dead_tup::text AS dead, (pg_total_relation_size(relid) / 1024)::text AS kb
    FROM pg_stat_user_tables ORDER BY relname`;
  const out: Record<string, { rows: number; deadRows: number; kb: number }> = {};
  for (const t of stats) {
    const [count] = await node.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM ${node.sql(t.table)}`;
    out[t.table] = { rows: Number(count?.n ?? 0), deadRows: Number(t.dead), kb: Number(t.kb) };
  }
  return out;
}

/** The actors' SQLite tables and the trace store's spans, read on a connection of this bench's own. */
function sqliteTables() {
  const out: Record<string, number> = {};
  const read = (file: string, tables: string[], prefix: string) => {
    if (!existsSync(join(dataDir, file))) return;
    const db = new Database(join(dataDir, file), { readonly: true });
    try {
      const present = new Set(
        db
          .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'")
          .all()
          .map((r) => r.name),
      );
      for (const table of tables.length > 0 ? tables : [...present]) {
        if (!present.has(table)) continue;
        const row = db.query<{ n: number }, []>(`SELECT count(*) AS n FROM "${table}"`).get();
        out[`${prefix}${table}`] = row?.n ?? 0;
      }
    } finally {
      db.close();
    }
  };
  read("actors.db", ["actor_state", "inbox", "outbox", "timers", "kv"], "actors.");
  read("traces.db", [], "traces.");
  return out;
}

// ---- The load: orders on schedule, reads beside them ----
interface Placed {
  orderId: string;
  placedAt: number;
  confirmedAt?: number;
  failed?: string;
}
const placed: Placed[] = [];
/** This window's latencies (placement → confirmed) and errors, reset at each sample. */
let windowLatencies: number[] = [];
let windowErrors: string[] = [];
let windowReads = 0;
let totalErrors = 0;
const error = (what: string, e: unknown) => {
  totalErrors++;
  windowErrors.push(`${what}: ${e instanceof Error ? e.message.slice(0, 160) : String(e)}`);
};

let shop: Awaited<ReturnType<typeof seedShop>>;
const samples: Array<Record<string, unknown>> = [];
/** JavaScriptCore's live objects by type at each sample: what the growth in jsObjects is made of. */
const objectTypes: Array<Record<string, number>> = [];
const result: Record<string, unknown> = {};
try {
  shop = await seedShop(api, Number(flags.skus), Number(flags.customers));
  await receiver.subscribe(api);
  const newOrder = orderMix(shop);
  const pick = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)] as T;
  const reads = [
    () => api.getOrder(pick(placed.slice(-500)).orderId),
    () => api.getInventory(pick(shop.skus).sku),
    () => api.call("GET", `/v1/orders?customerId=${pick(shop.customers)}&limit=20`),
    () => api.call("GET", `/v1/orders?q=${pick(shop.skus).sku}&limit=20`),
    () => api.call("GET", `/v1/activity?subject=${pick(placed.slice(-500)).orderId}&limit=20`),
  ];

  async function order(): Promise<void> {
    const { customerId, items } = newOrder();
    let record: Placed | undefined;
    try {
      const { orderId } = await api.placeOrder(customerId, items);
      record = { orderId, placedAt: performance.now() };
      placed.push(record);
    } catch (e) {
      return error("POST /v1/orders", e);
    }
    const seen = await confirmations.wait(record.orderId, CONFIRM_TIMEOUT_MS);
    if (!seen) record.failed = "no webhook within 60 s";
    else if (seen.failed) record.failed = seen.failed;
    else {
      record.confirmedAt = seen.at;
      windowLatencies.push(seen.at - record.placedAt);
      return;
    }
    error(`order ${record.orderId}`, record.failed);
  }

  async function sample(index: number, startedAt: number, cpuStart: NodeJS.CpuUsage) {
    Bun.gc(true);
    const memory = process.memoryUsage();
    const jsc = heapStats();
    objectTypes.push(jsc.objectTypeCounts);
    const tables = await postgresTables();
    const queued = await backlog(node.sql);
    const sqlite = sqliteTables();
    const cpu = process.cpuUsage(cpuStart);
    const elapsedS = (performance.now() - startedAt) / 1000;
    const s = {
      n: index,
      minute: round(elapsedS / 60, 2),
      ordersPlaced: placed.length,
      rssMB: round(memory.rss / MB),
      heapUsedMB: round(memory.heapUsed / MB),
      heapTotalMB: round(memory.heapTotal / MB),
      externalMB: round(memory.external / MB),
      jsHeapMB: round(jsc.heapSize / MB),
      jsObjects: jsc.objectCount,
      actorsInMemory: (node.host as unknown as { instances?: Map<string, unknown> }).instances?.size,
      processCoresBusy: round((cpu.user + cpu.system) / 1e6 / elapsedS, 2),
      loadAverage: round(os.loadavg()[0] ?? 0, 2),
      disk: diskBreakdown(),
      postgres: tables,
      sqlite,
      backlog: { ...queued, actorOutbox: sqlite["actors.outbox"] ?? 0 },
      window: {
        latencyMs: percentiles(windowLatencies),
        errors: windowErrors.length,
        ...(windowErrors.length > 0 ? { firstErrors: [...new Set(windowErrors)].slice(0, 3) } : {}),
        reads: windowReads,
      },
    };
    windowLatencies = [];
    windowErrors = [];
    windowReads = 0;
    samples.push(s);
    log(
      `#${index} ${s.minute} min: ${s.ordersPlaced} orders, rss ${s.rssMB} MB, heap ${s.heapUsedMB} MB, disk ${s.disk.totalMB} MB, p50 ${s.window.latencyMs.p50} ms p99 ${s.window.latencyMs.p99} ms, errors ${s.window.errors}, load ${s.loadAverage}`,
    );
  }

  const startedAt = performance.now();
  const cpuStart = process.cpuUsage();
  await sample(0, startedAt, cpuStart);
  const endAt = startedAt + minutes * 60_000;
  const inFlight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  let nextOrder = startedAt;
  let nextRead = startedAt;
  let nextSample = startedAt + sampleMs;
  let sampling: Promise<void> | undefined;
  for (let i = 1; ; ) {
    const now = performance.now();
    if (now >= endAt) break;
    if (now >= nextOrder) {
      track(order());
      nextOrder += 1000 / rate;
    }
    if (readRate > 0 && now >= nextRead && placed.length > 0) {
      track(
        (pick(reads)() as Promise<unknown>).then(
          () => void windowReads++,
          (e) => error("read", e),
        ),
      );
      nextRead += 1000 / readRate;
    }
    if (now >= nextSample && !sampling) {
      const n = i++;
      sampling = sample(n, startedAt, cpuStart).finally(() => {
        sampling = undefined;
      });
      nextSample += sampleMs;
    }
    await Bun.sleep(
      Math.max(1, Math.min(nextOrder, readRate > 0 ? nextRead : nextOrder) - performance.now()),
    );
  }
  log(`placing ended: ${placed.length} orders; waiting for the last ones`);
  await sampling;
  await Promise.all(inFlight);
  await sample(samples.length, startedAt, cpuStart);

  // ---- End checks: every order terminal, the queue drained, API.md's invariants ----
  const final: OrderView[] = await pool(placed, 16, (p) => client.order(p.orderId));
  const notTerminal = final.filter((o) => o.status === "pending");
  const drained = await backlog(node.sql);
  const world = {
    skus: shop.skus.map((s) => ({ sku: s.sku, stocked: SHOP_STOCK, priceCents: s.priceCents })),
    customers: shop.customers.map((id) => ({ id, funded: SHOP_BALANCE })),
  };
  const invariants = await checkInvariants(client, world, final, node.sql);

  // ---- Growth per hour: least squares over the samples after the first (the start's own allocations) ----
  const steady = samples.slice(1);
  const perHour = (value: (s: Record<string, unknown>) => number) => {
    const xs = steady.map((s) => (s.minute as number) / 60);
    const ys = steady.map(value);
    const mx = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const my = ys.reduce((a, b) => a + b, 0) / Math.max(1, ys.length);
    const den = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
    return den === 0 ? 0 : round(xs.reduce((a, x, i) => a + (x - mx) * ((ys[i] as number) - my), 0) / den);
  };
  const last = samples.at(-1) as (typeof samples)[number];
  const pgTables = Object.keys(last.postgres as Record<string, unknown>);
  const sqliteTablesAtEnd = Object.keys(last.sqlite as Record<string, unknown>);
  const diskParts = Object.keys((last.disk as { byPartMB: Record<string, number> }).byPartMB);
  const windows = samples.slice(1).map((s) => s.window as { latencyMs: { p50: number; p99: number } });
  const ordersPerHour = rate * 3600;
  Object.assign(result, {
    bench: "soak",
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      bun: Bun.version,
      loadAverageStart: loadStart.map((l) => round(l, 2)),
      loadAverageEnd: os.loadavg().map((l) => round(l, 2)),
    },
    setup: {
      node: "deploy/bun/node.ts startNode + deploy/reference.ts (what `npm start` runs) in this process, embedded defaults, a fresh temp EDGEWISE_DATA_DIR, RATE_LIMIT lifted",
      load: `${rate} orders/s (open loop) and ${readRate} reads/s (GET order, inventory, list by customer, search, activity) for ${minutes} min; confirmation = the order.confirmed webhook`,
      shop: `${shop.skus.length} skus, ${shop.customers.length} customers, stock and balances never run out; the order mix of bench/saga`,
      sampleSeconds: sampleMs / 1000,
      note: "RSS and heap (after Bun.gc) include this bench's own client, which keeps one small record per order",
    },
    growthPerHour: {
      basis: `least squares over samples 1..${samples.length - 1}, at ${rate} orders/s (${ordersPerHour} orders/h)`,
      rssMB: perHour((s) => s.rssMB as number),
      heapUsedMB: perHour((s) => s.heapUsedMB as number),
      jsHeapMB: perHour((s) => s.jsHeapMB as number),
      jsObjects: perHour((s) => s.jsObjects as number),
      diskMB: perHour((s) => (s.disk as { totalMB: number }).totalMB),
      diskMBByPart: Object.fromEntries(
        diskParts.map((p) => [
          p,
          perHour((s) => (s.disk as { byPartMB: Record<string, number> }).byPartMB[p] ?? 0),
        ]),
      ),
      postgresRows: Object.fromEntries(
        pgTables
          .map((t) => [t, perHour((s) => (s.postgres as Record<string, { rows: number }>)[t]?.rows ?? 0)])
          .filter(([, v]) => v !== 0),
      ),
      postgresDeadRows: Object.fromEntries(
        pgTables
          .map((t) => [
            t,
            perHour((s) => (s.postgres as Record<string, { deadRows: number }>)[t]?.deadRows ?? 0),
          ])
          .filter(([, v]) => v !== 0),
      ),
      sqliteRows: Object.fromEntries(
        sqliteTablesAtEnd
          .map((t) => [t, perHour((s) => (s.sqlite as Record<string, number>)[t] ?? 0)])
          .filter(([, v]) => v !== 0),
      ),
    },
    /** The object types whose count grew most from the first steady sample to the last, per 1,000 orders. */
    objectTypesGrowthPer1000Orders: (() => {
      const from = objectTypes[1] ?? {};
      const to = objectTypes.at(-1) ?? {};
      const orders = Math.max(1, (last.ordersPlaced as number) - ((samples[1]?.ordersPlaced as number) ?? 0));
      return Object.fromEntries(
        Object.keys(to)
          .map((type) => [type, ((to[type] ?? 0) - (from[type] ?? 0)) / (orders / 1000)] as const)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 12)
          .map(([type, n]) => [type, round(n)]),
      );
    })(),
    latencyDrift: {
      first: windows[0]?.latencyMs,
      last: windows.at(-2)?.latencyMs ?? windows.at(-1)?.latencyMs,
      note: "placement → order.confirmed webhook, ms; 'last' is the last full window (the final sample holds only the drain)",
    },
    samples,
    check: {
      ordersPlaced: placed.length,
      confirmed: final.filter((o) => o.status === "confirmed").length,
      notTerminal: notTerminal.length,
      errors: totalErrors,
      duplicateWebhooks: confirmations.duplicates,
      backlogAtEnd: drained,
      invariantViolations: invariants.violations.slice(0, 10),
      invariantsHold: invariants.violations.length === 0,
    },
  });
} finally {
  receiver.stop();
  await embedded.stop();
}
console.log(JSON.stringify(result, null, 2));
