// The end of every chaos scenario: wait for the queue to drain, then check that every accepted order is terminal,
// nothing was lost or applied twice, and the invariants hold; and write the scenario's measurements.
import { expect } from "bun:test";
import { appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type postgres from "postgres";
import type { CommerceClient, OrderView } from "../commerce/client.ts";
import {
  backlog,
  brokerLeft,
  checkInvariants,
  deadLetters,
  type InvariantReport,
  makeWorld,
  mapLimit,
  readModelMismatches,
  retryCauses,
  setUpWorld,
  type World,
} from "./invariants.ts";
import {
  FAULT_SECONDS,
  LoadDriver,
  measure,
  type PlacedOrder,
  REQUEST_TIMEOUT_MS,
  startReadinessProbe,
  timedCall,
} from "./load.ts";

/** Overrides every scenario's bound on the drain after the fault (seconds). */
const DRAIN_SECONDS = Number(process.env.CHAOS_DRAIN_SECONDS ?? "") || undefined;

/** Where measurements go, one JSON line per scenario run (also printed). */
export const RESULTS_FILE = process.env.CHAOS_RESULTS ?? join(tmpdir(), "edgewise-chaos-results.jsonl");

export function writeMeasurement(row: Record<string, unknown>): void {
  const line = JSON.stringify({ at: new Date().toISOString(), ...row });
  appendFileSync(RESULTS_FILE, `${line}\n`);
  console.log(`[chaos] ${line}`);
}

/** Final: rejected, cancelled, or confirmed with no cancel planned (a planned cancel must end cancelled). */
const isFinal = (order: PlacedOrder, view: OrderView | undefined) =>
  view !== undefined &&
  (view.status === "rejected" ||
    view.status === "cancelled" ||
    (view.status === "confirmed" && order.plan.cancel === undefined));

export interface DrainReport {
  drained: boolean;
  /** From `from` until every order was final and the queues empty; null if that never happened. */
  drainMs: number | null;
  /** From `from` until every accepted order was final (the queues may still hold read-side events). */
  ordersFinalMs: number | null;
  /** Accepted orders that never became final: lost (or stuck) messages. */
  stuck: Array<{ orderId: string; status: string | undefined; cancel: string | undefined }>;
  backlog: Awaited<ReturnType<typeof backlog>>;
  reservedLeft: Record<string, number>;
  final: OrderView[];
  invariants: InvariantReport;
  /** Accepted orders whose read-model row is missing or stale after the drain. */
  readModel: string[];
  deadLetters: unknown[];
  /** A few of the messages the broker still held at the end, if any. */
  brokerLeft: unknown[];
  /** Failed delivery attempts grouped by destination, status and error (times in ms since the epoch). */
  retryCauses: Awaited<ReturnType<typeof retryCauses>>;
}

/**
 * Waits (up to `timeoutMs`) until every accepted order is final, no sku holds a reservation and the broker's
 * and billing's queues are empty, cancelling confirmed orders whose plan says so on the way (as the client would);
 * then checks the invariants, the read model and the dead-letter queue. Never throws for a violation: the caller
 * records the report, then asserts.
 */
export async function drainAndCheck(options: {
  api: CommerceClient;
  driver: LoadDriver;
  world: World;
  /** A direct pool on the node's schema. */
  sql: postgres.Sql;
  /** Whether the broker's tables live in that schema (embedded broker, or a broker given the same schema). */
  brokerInSchema?: boolean;
  from: number;
  timeoutMs: number;
}): Promise<DrainReport> {
  const { api, driver, world, sql } = options;
  const views = new Map<string, OrderView>();
  const deadline = Date.now() + options.timeoutMs;
  let drainedAt: number | undefined;
  let finalAt: number | undefined;
  let queues = await backlog(sql, { broker: options.brokerInSchema ?? true }).catch(() => undefined);
  let reserved: Record<string, number> = {};
  while (Date.now() < deadline) {
    const open = driver.accepted.filter((order) => !isFinal(order, views.get(order.orderId as string)));
    await mapLimit(open, 16, async (order) => {
      const { record, body } = await timedCall(api, "read-order", "GET", `/v1/orders/${order.orderId}`, {
        abortMs: 5_000,
      });
      if (record.status !== 200) return;
      const view = body as unknown as OrderView;
      views.set(order.orderId as string, view);
      if (view.status === "confirmed" && order.plan.cancel === "settled") driver.requestCancel(order);
    });
    await driver.flush(30_000).catch(() => {});
    const stillOpen = driver.accepted.filter((order) => !isFinal(order, views.get(order.orderId as string)));
    if (stillOpen.length === 0) {
      finalAt ??= Date.now();
      reserved = {};
      for (const { sku } of world.skus) {
        const { record, body } = await timedCall(api, "read-sku", "GET", `/v1/inventory/${sku}`);
        reserved[sku] = record.status === 200 ? (body.reserved as number) : Number.NaN;
      }
      queues = await backlog(sql, { broker: options.brokerInSchema ?? true }).catch(() => undefined);
      if (
        Object.values(reserved).every((r) => r === 0) &&
        queues !== undefined &&
        queues.brokerQueued === 0 &&
        queues.billingOutbox === 0
      ) {
        drainedAt = Date.now();
        break;
      }
    }
    await Bun.sleep(500);
  }
  queues = (await backlog(sql, { broker: options.brokerInSchema ?? true }).catch(() => undefined)) ?? {
    brokerQueued: -1,
    deadLettered: -1,
    billingOutbox: -1,
    deliveryRetries: -1,
  };
  const stuck = driver.accepted
    .filter((order) => !isFinal(order, views.get(order.orderId as string)))
    .map((order) => ({
      orderId: order.orderId as string,
      status: views.get(order.orderId as string)?.status,
      cancel: order.plan.cancel,
    }));

  // The truth at the end: every accepted order, read again.
  const final = await mapLimit(driver.accepted, 16, async (order) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await api.order(order.orderId as string);
      } catch (error) {
        if (attempt >= 20) throw error;
        await Bun.sleep(250);
      }
    }
  });
  // Reads (cache, read model) may lag a little behind the last delivery: give them a few seconds to agree.
  let invariants = await checkInvariants(api, world, final, sql);
  for (let i = 0; i < 20 && invariants.violations.length > 0; i++) {
    await Bun.sleep(500);
    invariants = await checkInvariants(api, world, final, sql);
  }
  let readModel = await readModelMismatches(sql, final);
  for (let i = 0; i < 20 && readModel.length > 0; i++) {
    await Bun.sleep(500);
    readModel = await readModelMismatches(sql, final);
  }
  const dead =
    (options.brokerInSchema ?? true) && queues.deadLettered > 0 ? await deadLetters(sql).catch(() => []) : [];
  const left =
    (options.brokerInSchema ?? true) && queues.brokerQueued > 0 ? await brokerLeft(sql).catch(() => []) : [];
  return {
    drained: drainedAt !== undefined,
    drainMs: drainedAt === undefined ? null : drainedAt - options.from,
    ordersFinalMs: finalAt === undefined ? null : finalAt - options.from,
    stuck,
    backlog: queues,
    reservedLeft: Object.fromEntries(Object.entries(reserved).filter(([, r]) => r !== 0)),
    final,
    invariants,
    readModel,
    deadLetters: [...dead],
    brokerLeft: [...left],
    retryCauses: (options.brokerInSchema ?? true) ? await retryCauses(sql).catch(() => []) : [],
  };
}

/** The report's part of a measurement row: what was lost, what was applied twice. */
export function lossSummary(report: DrainReport) {
  return {
    drained: report.drained,
    drainMs: report.drainMs,
    ordersFinalMs: report.ordersFinalMs,
    ordersStuck: report.stuck.length,
    deadLettered: report.backlog.deadLettered,
    brokerQueuedAtEnd: report.backlog.brokerQueued,
    billingOutboxAtEnd: report.backlog.billingOutbox,
    deliveryRetries: report.backlog.deliveryRetries,
    readModelMismatches: report.readModel.length,
    lost: report.stuck.length + Math.max(0, report.backlog.deadLettered) + report.readModel.length,
    invariantViolations: report.invariants.violations.length,
    outcomes: report.invariants.outcomes,
  };
}

/** The evidence for a failed scenario: stuck orders, violations, dead letters, read-model gaps, a backlog. */
export function evidenceLines(report: DrainReport, limit = 10): string[] {
  const { brokerQueued, billingOutbox } = report.backlog;
  return [
    ...report.stuck.slice(0, limit).map((s) => `stuck: ${JSON.stringify(s)}`),
    ...report.invariants.violations.slice(0, 2 * limit).map((v) => `violation: ${v}`),
    ...report.readModel.slice(0, limit).map((r) => `read model: ${r}`),
    ...report.deadLetters.slice(0, Math.ceil(limit / 2)).map((d) => `dead letter: ${JSON.stringify(d)}`),
    ...(Object.keys(report.reservedLeft).length > 0
      ? [`reserved left: ${JSON.stringify(report.reservedLeft)}`]
      : []),
    ...(!report.drained && (brokerQueued !== 0 || billingOutbox !== 0)
      ? [`not drained: broker queue ${brokerQueued}, billing outbox ${billingOutbox}`]
      : []),
    ...report.brokerLeft.slice(0, limit).map((m) => `in the broker: ${JSON.stringify(m)}`),
  ];
}

/** Prints the evidence for a failed scenario, and the node's log lines, counted. */
export function printEvidence(
  name: string,
  report: DrainReport,
  logs: Array<{ at: number; line: string }> = [],
) {
  const lines = evidenceLines(report);
  if (lines.length === 0) return;
  console.error(`[chaos] ${name} evidence:\n  ${lines.join("\n  ")}`);
  if (logs.length > 0) {
    const counts = new Map<string, number>();
    for (const { line } of logs) {
      const key = line.replace(/[0-9a-f-]{8,}/gi, "…").slice(0, 120);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    console.error(
      `[chaos] ${name} node log (distinct lines):\n  ${[...counts]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 15)
        .map(([line, n]) => `${n}× ${line}`)
        .join("\n  ")}`,
    );
  }
}

export interface FaultScenarioOptions {
  /** The scenario's name in the measurements (`redis-blackhole`, …). */
  name: string;
  api: CommerceClient;
  /** A direct pool on the node's schema. */
  sql: postgres.Sql;
  brokerInSchema?: boolean;
  /** Orders planned; the world is sized for them. */
  orders: number;
  orderRate: number;
  readRate: number;
  maxInFlight?: number;
  seed: number;
  /** Resolves when the fault should begin. Default: 5 s of load. */
  beforeFault?: (driver: LoadDriver) => Promise<void>;
  /** Injects the fault; then `faultMs` pass (or `during` resolves); then `heal`. */
  inject: (driver: LoadDriver) => Promise<void> | void;
  faultMs?: number;
  during?: (driver: LoadDriver) => Promise<void>;
  heal: (driver: LoadDriver) => Promise<void> | void;
  /** Resolves when the load should stop. Default: 5 s after healing. */
  afterHeal?: (driver: LoadDriver) => Promise<void>;
  /** Node log lines that count as the node noticing the fault. */
  logs?: () => Array<{ at: number; line: string }>;
  /** The gateway's base URL (for /readyz; a function, as a restarted node may move). */
  base: () => string;
  /** How long the queues may take to drain once the fault is healed. Default 90 s; CHAOS_DRAIN_SECONDS overrides. */
  drainTimeoutMs?: number;
  /** Extra fields for the measurement row. */
  extra?: () => Record<string, unknown>;
}

/** Places orders and reads through a fault, heals it, drains, checks, and writes one measurement row. */
export async function runFaultScenario(options: FaultScenarioOptions) {
  const { world, plans } = makeWorld(options.name, options.orders, options.seed);
  await setUpWorld(options.api, world);
  const driver = new LoadDriver({
    api: options.api,
    plans,
    orderRate: options.orderRate,
    readRate: options.readRate,
    ...(options.maxInFlight ? { maxInFlight: options.maxInFlight } : {}),
  });
  const probe = startReadinessProbe(options.base);
  const loadStart = Date.now();
  driver.start();
  await (options.beforeFault ? options.beforeFault(driver) : Bun.sleep(5_000));
  const window = { start: Date.now(), end: 0 };
  await options.inject(driver);
  await (options.during ? options.during(driver) : Bun.sleep(options.faultMs ?? FAULT_SECONDS * 1000));
  await options.heal(driver);
  window.end = Date.now();
  await (options.afterHeal ? options.afterHeal(driver) : Bun.sleep(5_000));
  await driver.stop(60_000);
  const loadMs = Date.now() - loadStart;
  const report = await drainAndCheck({
    api: options.api,
    driver,
    world,
    sql: options.sql,
    brokerInSchema: options.brokerInSchema ?? true,
    from: window.end,
    timeoutMs: DRAIN_SECONDS ? DRAIN_SECONDS * 1000 : (options.drainTimeoutMs ?? 90_000),
  });
  await probe.stop();
  const logs = options.logs?.() ?? [];
  const measured = measure(driver.records, window, probe.probes, logs);
  const row = {
    scenario: options.name,
    faultSeconds: Math.round((window.end - window.start) / 100) / 10,
    configuredFaultSeconds: FAULT_SECONDS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    loadMs,
    rate: { ordersPerSecond: options.orderRate, readsPerSecond: options.readRate },
    ordersPlaced: driver.orders.length,
    ordersAccepted: driver.accepted.length,
    ordersRetriedByClient: driver.orders.filter((o) => o.attempts > 1).length,
    shed: driver.shed,
    unexpectedAnswers: driver.unexpected.length,
    ...measured,
    ...lossSummary(report),
    retryCauses: report.retryCauses.map(({ first, last, ...cause }) => ({
      ...cause,
      firstMs: first - window.start,
      lastMs: last - window.start,
    })),
    ...(options.extra?.() ?? {}),
    /** What went wrong, if anything: `table.ts --ci` prints it at the end of CI's output. */
    evidence: evidenceLines(report, 3),
  };
  writeMeasurement(row);
  if (process.env.CHAOS_DEBUG) {
    console.error(
      `[chaos] ${options.name} probes: ${JSON.stringify(
        probe.probes.map((p) => [
          p.start - window.start,
          p.end - p.start,
          p.status,
          p.degraded.join("+"),
          p.breakers.join("+"),
        ]),
      )}`,
    );
  }
  printEvidence(options.name, report, logs);
  if (driver.unexpected.length > 0) {
    console.error(
      `[chaos] ${options.name} unexpected answers: ${JSON.stringify(driver.unexpected.slice(0, 5))}`,
    );
  }
  return { row, report, driver, window, probes: probe.probes };
}

/**
 * What every fault scenario must show once it drained: no order stuck, the invariants exact, no dead letter,
 * the read model equal to the actors, no request hung, every order accepted, some confirmed, /readyz never hung.
 */
export function expectScenarioHeld(
  row: Awaited<ReturnType<typeof runFaultScenario>>["row"],
  report: DrainReport,
): void {
  expect(report.stuck).toEqual([]);
  expect(report.invariants.violations).toEqual([]);
  expect(report.backlog.deadLettered).toBe(0);
  expect(report.readModel).toEqual([]);
  expect(row.hung).toBe(0);
  expect(row.ordersAccepted).toBe(row.ordersPlaced);
  expect(row.outcomes.confirmed).toBeGreaterThan(0);
  // /readyz answers within its own check timeout (2 s), whatever a dependency does.
  expect(row.readyzHung).toBe(0);
}
