// Load for chaos scenarios: orders and reads at a steady rate, each request timed and classified, with the
// client's own retries (same Idempotency-Key); plus a /readyz probe and the measurements derived from both.
import type { CommerceClient, OrderView } from "../commerce/client.ts";
import type { OrderPlan } from "./invariants.ts";

const envNumber = (name: string, fallback: number) => {
  const text = process.env[name];
  const value = text === undefined || text === "" ? Number.NaN : Number(text);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

/** How long each fault lasts (the issue asks for 30 s; CHAOS_FAULT_SECONDS=5 for a quick run). */
export const FAULT_SECONDS = envNumber("CHAOS_FAULT_SECONDS", 30);
/** The node's REQUEST_TIMEOUT in the scenarios. */
export const REQUEST_TIMEOUT_MS = envNumber("CHAOS_REQUEST_TIMEOUT_MS", 5_000);
/** A request that took longer than this hung: the gateway should have answered 504 at REQUEST_TIMEOUT. */
export const HUNG_AFTER_MS = REQUEST_TIMEOUT_MS + 1_000;
/** The client gives up here (recorded as status -1). */
export const CLIENT_ABORT_MS = REQUEST_TIMEOUT_MS + 5_000;
/** A failure answered faster than this failed fast. */
export const FAST_FAIL_MS = 1_000;

export interface RequestRecord {
  op: "place" | "cancel" | "read-order" | "read-sku" | "read-balance" | "read-points";
  start: number;
  end: number;
  /** HTTP status; 0 for a network error, -1 when the client gave up after CLIENT_ABORT_MS. */
  status: number;
  error?: string;
}

export const failed = (r: { status: number }) => r.status <= 0 || r.status >= 500 || r.status === 429;

/** One timed request with the client's token; never throws. */
export async function timedCall(
  api: CommerceClient,
  op: RequestRecord["op"],
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; abortMs?: number } = {},
): Promise<{ record: RequestRecord; body: Record<string, unknown> }> {
  const token = await api.token();
  const start = Date.now();
  let status = 0;
  let error: string | undefined;
  let body: Record<string, unknown> = {};
  try {
    const response = await fetch(`${api.target.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
        ...options.headers,
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      signal: AbortSignal.timeout(options.abortMs ?? CLIENT_ABORT_MS),
    });
    const text = await response.text();
    status = response.status;
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      body = { text: text.slice(0, 200) };
    }
  } catch (caught) {
    const name = caught instanceof Error ? caught.name : "";
    status = name === "TimeoutError" || name === "AbortError" ? -1 : 0;
    error = caught instanceof Error ? `${caught.name}: ${caught.message}`.slice(0, 200) : String(caught);
  }
  return { record: { op, start, end: Date.now(), status, ...(error ? { error } : {}) }, body };
}

/** A plan's progress on the client. */
export interface PlacedOrder {
  plan: OrderPlan;
  /** Set by the first 202. */
  orderId?: string;
  attempts: number;
  /** The cancel was answered 202. */
  cancelled: boolean;
  cancelRequested: boolean;
}

interface Retry {
  kind: "place" | "cancel";
  order: PlacedOrder;
  dueAt: number;
}

export interface LoadOptions {
  api: CommerceClient;
  plans: OrderPlan[];
  /** Orders placed per second. */
  orderRate: number;
  /** Reads per second (order, sku, balance and loyalty in turn). */
  readRate: number;
  /** New requests are skipped (counted as shed) while this many are in flight. Default 64. */
  maxInFlight?: number;
  /** How long the client waits before retrying a failed POST. Default 1000 ms. */
  retryAfterMs?: number;
}

/**
 * An open-loop client: orders and reads at fixed rates, whatever the latency; failed or hung POSTs are retried
 * with the same Idempotency-Key, as a real client would, so that an order placed but not acknowledged is
 * acknowledged later. Every request is recorded.
 */
export class LoadDriver {
  readonly records: RequestRecord[] = [];
  readonly orders: PlacedOrder[] = [];
  readonly byId = new Map<string, PlacedOrder>();
  /** Requests not sent because too many were in flight. */
  shed = 0;
  /** Unexpected answers (e.g. 4xx other than 429): evidence for a bug, not a fault. */
  readonly unexpected: Array<{ op: string; status: number; body: unknown }> = [];
  private readonly retries: Retry[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private nextPlan = 0;
  private readCounter = 0;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly options: LoadOptions) {}

  get accepted(): PlacedOrder[] {
    return this.orders.filter((order) => order.orderId !== undefined);
  }

  /** Starts placing and reading. */
  start(): void {
    this.running = true;
    const { orderRate, readRate } = this.options;
    if (orderRate > 0) this.loops.push(this.every(1000 / orderRate, () => this.placeNext()));
    if (readRate > 0) this.loops.push(this.every(1000 / readRate, () => this.readSomething()));
    this.loops.push(this.every(100, () => this.pumpRetries()));
  }

  /** Plans not yet placed. */
  get remaining(): number {
    return this.options.plans.length - this.nextPlan;
  }

  /** Stops new work; then keeps retrying until every started order is accepted and its cancel answered. */
  async stop(finishTimeoutMs = 60_000): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await this.flush(finishTimeoutMs);
  }

  /** Sends every retry and cancel still owed, until all are answered (or throws after `timeoutMs`). */
  async flush(finishTimeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + finishTimeoutMs;
    while (Date.now() < deadline) {
      this.pumpRetries(true);
      await Promise.all([...this.inFlight]);
      if (this.retries.length === 0 && this.inFlight.size === 0) return;
      await Bun.sleep(100);
    }
    throw new Error(
      `client work unfinished after ${finishTimeoutMs} ms: ${this.retries.length} retries pending, ` +
        `${this.orders.filter((o) => !o.orderId).length} orders never accepted`,
    );
  }

  /** Asks for a cancel (once), retried until answered 202. */
  requestCancel(order: PlacedOrder): void {
    if (order.cancelRequested || !order.orderId) return;
    order.cancelRequested = true;
    this.retries.push({ kind: "cancel", order, dueAt: 0 });
  }

  private every(intervalMs: number, tick: () => void): Promise<void> {
    return (async () => {
      let next = performance.now();
      while (this.running) {
        tick();
        next += intervalMs;
        const wait = next - performance.now();
        if (wait > 0) await Bun.sleep(wait);
        else next = performance.now(); // behind (a busy machine): do not burst to catch up
      }
    })();
  }

  private launch(work: () => Promise<void>, force = false): boolean {
    if (!force && this.inFlight.size >= (this.options.maxInFlight ?? 64)) {
      this.shed++;
      return false;
    }
    const promise = work().finally(() => this.inFlight.delete(promise));
    this.inFlight.add(promise);
    return true;
  }

  private placeNext(): void {
    const plan = this.options.plans[this.nextPlan];
    if (!plan) return;
    const order: PlacedOrder = { plan, attempts: 0, cancelled: false, cancelRequested: false };
    if (this.launch(() => this.place(order))) {
      this.nextPlan++;
      this.orders.push(order);
    }
  }

  private async place(order: PlacedOrder): Promise<void> {
    order.attempts++;
    const { record, body } = await timedCall(this.options.api, "place", "POST", "/v1/orders", {
      body: { customerId: order.plan.customerId, items: order.plan.items },
      headers: { "idempotency-key": order.plan.key },
    });
    this.records.push(record);
    if (record.status === 202) {
      const orderId = body.orderId as string;
      if (order.orderId && order.orderId !== orderId) {
        this.unexpected.push({ op: "place: another orderId for the same key", status: 202, body });
      }
      order.orderId = orderId;
      this.byId.set(orderId, order);
      if (order.plan.cancel === "now") this.requestCancel(order);
      return;
    }
    if (!failed(record)) this.unexpected.push({ op: "place", status: record.status, body });
    this.retries.push({ kind: "place", order, dueAt: Date.now() + (this.options.retryAfterMs ?? 1000) });
  }

  private async cancel(order: PlacedOrder): Promise<void> {
    const { record, body } = await timedCall(
      this.options.api,
      "cancel",
      "POST",
      `/v1/orders/${order.orderId}/cancel`,
    );
    this.records.push(record);
    if (record.status === 202) {
      order.cancelled = true;
      return;
    }
    if (!failed(record)) this.unexpected.push({ op: "cancel", status: record.status, body });
    this.retries.push({ kind: "cancel", order, dueAt: Date.now() + (this.options.retryAfterMs ?? 1000) });
  }

  private pumpRetries(force = false): void {
    const now = Date.now();
    for (let i = 0; i < this.retries.length; ) {
      const retry = this.retries[i] as Retry;
      if (retry.dueAt > now) {
        i++;
        continue;
      }
      const launched = this.launch(
        () => (retry.kind === "place" ? this.place(retry.order) : this.cancel(retry.order)),
        force,
      );
      if (!launched) return;
      this.retries.splice(i, 1);
    }
  }

  private readSomething(): void {
    const accepted = this.accepted;
    const pick = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)] as T;
    const n = this.readCounter++ % 4;
    const { api } = this.options;
    if (accepted.length === 0) return;
    const order = pick(accepted);
    const sku = pick(order.plan.items).sku;
    this.launch(async () => {
      if (n === 0) {
        const { record, body } = await timedCall(api, "read-order", "GET", `/v1/orders/${order.orderId}`);
        this.records.push(record);
        this.noteRead(record, body);
        const view = body as unknown as OrderView;
        if (record.status === 200 && view.status === "confirmed" && order.plan.cancel === "settled") {
          this.requestCancel(order);
        }
      } else if (n === 1) {
        const { record, body } = await timedCall(api, "read-sku", "GET", `/v1/inventory/${sku}`);
        this.records.push(record);
        this.noteRead(record, body);
      } else if (n === 2) {
        const path = `/v1/accounts/${order.plan.customerId}`;
        const { record, body } = await timedCall(api, "read-balance", "GET", path);
        this.records.push(record);
        this.noteRead(record, body);
      } else {
        const path = `/v1/customers/${order.plan.customerId}/loyalty`;
        const { record, body } = await timedCall(api, "read-points", "GET", path);
        this.records.push(record);
        this.noteRead(record, body);
      }
    });
  }

  private noteRead(record: RequestRecord, body: unknown): void {
    if (record.status !== 200 && !failed(record)) {
      this.unexpected.push({ op: record.op, status: record.status, body });
    }
  }
}

export interface Probe {
  start: number;
  end: number;
  /** 200, 503; 0 for a network error; -1 when /readyz did not answer within 3 s. */
  status: number;
  /** Dependencies /readyz reported down. */
  degraded: string[];
  /** Breakers not closed, as `name:state`. */
  breakers: string[];
}

/** Polls /readyz (no auth) every `intervalMs`; each probe gives up after 3 s. */
export function startReadinessProbe(base: () => string, intervalMs = 500) {
  const probes: Probe[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const start = Date.now();
      let status = 0;
      let degraded: string[] = [];
      let breakers: string[] = [];
      try {
        const response = await fetch(`${base()}/readyz`, { signal: AbortSignal.timeout(3_000) });
        status = response.status;
        const body = (await response.json()) as {
          dependencies?: Record<string, { ok: boolean; breaker?: string }>;
        };
        const deps = Object.entries(body.dependencies ?? {});
        degraded = deps.filter(([, dep]) => !dep.ok).map(([name]) => name);
        breakers = deps
          .filter(([, dep]) => dep.breaker !== undefined && dep.breaker !== "closed")
          .map(([name, dep]) => `${name}:${dep.breaker}`);
      } catch (caught) {
        status = caught instanceof Error && caught.name === "TimeoutError" ? -1 : 0;
      }
      probes.push({ start, end: Date.now(), status, degraded, breakers });
      const wait = intervalMs - (Date.now() - start);
      if (wait > 0) await Bun.sleep(wait);
    }
  })();
  return {
    probes,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** When the fault began and ended (ms since the epoch); for a kill, the kill and the restart. */
export interface FaultWindow {
  start: number;
  end: number;
}

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};

/** The message of one of the node's log lines: its logger writes JSON (`{"msg": …}`); a plain line is its own. */
function logMessage(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const msg = (JSON.parse(line) as { msg?: unknown }).msg;
    return typeof msg === "string" ? msg : line;
  } catch {
    return line;
  }
}

/** The numbers a scenario reports, from its requests, its readiness probes and the node's log. */
export function measure(
  records: RequestRecord[],
  window: FaultWindow | undefined,
  probes: Probe[] = [],
  logs: Array<{ at: number; line: string }> = [],
) {
  const bad = records.filter(failed);
  const ms = (r: RequestRecord) => r.end - r.start;
  const summary = {
    requests: records.length,
    ok: records.length - bad.length,
    failed: bad.length,
    failedFast: bad.filter((r) => ms(r) < FAST_FAIL_MS).length,
    failedSlow: bad.filter((r) => ms(r) >= FAST_FAIL_MS).length,
    timeouts504: records.filter((r) => r.status === 504).length,
    hung: records.filter((r) => ms(r) > HUNG_AFTER_MS || r.status === -1).length,
    maxLatencyMs: records.reduce((max, r) => Math.max(max, ms(r)), 0),
    failedByOp: Object.fromEntries(
      [...new Set(bad.map((r) => r.op))].map((op) => [op, bad.filter((r) => r.op === op).length]),
    ),
    failedByStatus: Object.fromEntries(
      [...new Set(bad.map((r) => r.status))].map((s) => [
        String(s),
        bad.filter((r) => r.status === s).length,
      ]),
    ),
    detectMs: null as number | null,
    readyzDetectMs: null as number | null,
    logDetectMs: null as number | null,
    recoverMs: null as number | null,
    /** Breaker transitions the node logged, in ms from the fault's start. */
    breakerTransitions: [] as string[],
    readyzRecoverMs: null as number | null,
    readyzProbes: probes.length,
    readyzHung: probes.filter((p) => p.status === -1).length,
    readyz503: probes.filter((p) => p.status === 503).length,
    readyzDegraded: probes.filter((p) => p.status === 200 && p.degraded.length > 0).length,
    latencyBefore: { p50: null as number | null, p99: null as number | null },
    latencyDuring: { p50: null as number | null, p99: null as number | null },
    latencyAfter: { p50: null as number | null, p99: null as number | null },
  };
  if (!window) return summary;
  const during = records.filter((r) => r.start >= window.start && r.start < window.end);
  const before = records.filter((r) => r.start < window.start);
  const after = records.filter((r) => r.start >= window.end);
  const lat = (list: RequestRecord[]) => ({
    p50: percentile(list.map(ms), 50),
    p99: percentile(list.map(ms), 99),
  });
  summary.latencyBefore = lat(before);
  summary.latencyDuring = lat(during);
  summary.latencyAfter = lat(after);
  const firstBad = records
    .filter((r) => r.end >= window.start && failed(r))
    .reduce((min, r) => Math.min(min, r.end), Number.POSITIVE_INFINITY);
  if (Number.isFinite(firstBad)) summary.detectMs = firstBad - window.start;
  const firstDegraded = probes.find(
    (p) => p.start >= window.start && (p.status !== 200 || p.degraded.length > 0),
  );
  if (firstDegraded) summary.readyzDetectMs = firstDegraded.end - window.start;
  summary.breakerTransitions = logs
    .filter((l) => l.at >= window.start)
    .map((l) => ({ at: l.at, msg: logMessage(l.line) }))
    .filter((l) => /^breaker /.test(l.msg))
    .slice(0, 12)
    .map((l) => `${l.at - window.start}ms ${l.msg.replace(/^breaker /, "")}`);
  const firstLog = logs.find((l) => l.at >= window.start);
  if (firstLog) summary.logDetectMs = firstLog.at - window.start;
  // Recovered: the first success after the fault ended from which on every request started succeeds.
  const lastBadStart = after
    .filter(failed)
    .reduce((max, r) => Math.max(max, r.start), Number.NEGATIVE_INFINITY);
  const steady = after
    .filter((r) => !failed(r) && r.start > lastBadStart)
    .reduce((min, r) => Math.min(min, r.end), Number.POSITIVE_INFINITY);
  if (Number.isFinite(steady)) summary.recoverMs = steady - window.end;
  const laterProbes = probes.filter((p) => p.start >= window.end);
  const lastBadProbe = laterProbes
    .filter((p) => p.status !== 200 || p.degraded.length > 0)
    .reduce((max, p) => Math.max(max, p.start), Number.NEGATIVE_INFINITY);
  const readyAgain = laterProbes.find((p) => p.start > lastBadProbe);
  if (readyAgain) summary.readyzRecoverMs = readyAgain.end - window.end;
  return summary;
}
