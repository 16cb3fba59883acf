// QStash's 429s on Workers: an isolate's last answer to a publish, shared with every isolate through the broker's coordinator.
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { errorFields } from "../../../shared/telemetry/log/redact.ts";
import { withTimeout } from "../../../shared/resilience/index.ts";
import type { Envelope } from "../../../shared/envelope/index.ts";
import type { Transport } from "../../runtime/transport.ts";

/*
 * On a node every relay publishes through one transport, so /readyz and /metrics read the queue's last answer there.
 * On Workers each Durable Object isolate has its own relays, and the gateway's /readyz sees none of them: the
 * isolates report a change of their last answer to the `broker` BreakerCoordinator object, and /readyz reads it
 * there. Only a change is reported (a 429 with a new reset, then the publish that was taken after it), so a queue
 * that takes every publish costs no subrequest at all; under a limit, an isolate reports at most once per
 * `refreshMs` besides its changes.
 */

/** Where the isolates share the queue's limit. Durations, not times, cross it: clocks differ. */
export interface QueueLimitPort {
  /** An isolate's latest answer: a 429 whose reset is `limitedForMs` ahead, or undefined for a publish taken. */
  report(limitedForMs: number | undefined): Promise<void>;
  /** The latest answer any isolate reported, while its reset is ahead: ms until then; undefined otherwise. */
  read(): Promise<number | undefined>;
}

export interface QueueLimitOptions {
  /** Without one (no BREAKERS binding), the limit stays this isolate's own. */
  port?: QueueLimitPort | undefined;
  clock?: Clock;
  /** A report slower than this is abandoned. Default 2 s. */
  timeoutMs?: number;
  /**
   * A read (`shared`, from /readyz's broker check) slower than this is abandoned. Default 500 ms: the check runs it
   * beside the queue's own request within /readyz's 2 s budget, so a slow coordinator must not take that budget
   * (the check would time out and /readyz answer 503 for a queue that answers).
   */
  readTimeoutMs?: number;
  /** While limited, the same reset is reported again after this long (another isolate may have cleared it). Default 60 s. */
  refreshMs?: number;
  /** Where an unreachable port is said, once per outage. */
  log?: (line: string, fields: Record<string, unknown>) => void;
}

/** What the BreakerCoordinator object answers over RPC (breaker-coordinator.ts), as a stub sees it. */
export interface QueueLimitRpc {
  /** The broker's object only: an isolate's latest answer from the queue, a 429's reset `limitedForMs` ahead or a publish taken. */
  reportQueueLimit(limitedForMs: number | undefined): Promise<void>;
  /** The latest such answer, while its reset is ahead: ms until then. */
  queueLimit(): Promise<number | undefined>;
}

/** The slice of the BREAKERS binding the port uses (typed here without Workers' types: Bun tests import this file). */
export interface QueueLimitNamespace<Id = unknown> {
  idFromName(name: string): Id;
  get(id: Id): unknown;
}

/** The coordinator of the `broker` dependency (breaker-coordinator.ts) as the port. */
export function queueLimitPort<Id>(namespace: QueueLimitNamespace<Id>): QueueLimitPort {
  const stub = () => namespace.get(namespace.idFromName("broker")) as QueueLimitRpc;
  return {
    report: (limitedForMs) => stub().reportQueueLimit(limitedForMs),
    read: () => stub().queueLimit(),
  };
}

export class QueueLimit {
  private until: number | undefined;
  /** The reset this isolate last reported (undefined: none, or a clear), and when. */
  private reported: number | undefined;
  private reportedAt = 0;
  private inFlight: Promise<void> | undefined;
  private unreachable = false;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly readTimeoutMs: number;
  private readonly refreshMs: number;

  constructor(private readonly options: QueueLimitOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.readTimeoutMs = options.readTimeoutMs ?? 500;
    this.refreshMs = options.refreshMs ?? 60_000;
  }

  /** The queue's answer to one of this isolate's publishes (`QStashTransportOptions.onRateLimit`). */
  observe(until: number | undefined): void {
    this.until = until;
  }

  /** While this isolate's last answer from the queue was a 429 whose reset is ahead: that reset (ms since the epoch). */
  rateLimitedUntil(): number | undefined {
    return this.until !== undefined && this.until > this.clock.now() ? this.until : undefined;
  }

  /**
   * Reports this isolate's answer to the port when it changed, and returns that report; undefined otherwise (nothing
   * to wait for, not even a resolved promise). Never rejects: a port that fails is tried again at the next flush.
   * While a report is in flight, another relay's send does not wait for it (a slow coordinator would hold every
   * object of the isolate, 429 or not): a change meanwhile is reported at a later flush.
   */
  flush(): Promise<void> | undefined {
    if (this.inFlight) return undefined;
    const port = this.options.port;
    const now = this.clock.now();
    const current = this.rateLimitedUntil();
    // A reset that passed needs no word: the shared one lapses at the same time.
    if (current === undefined && this.until !== undefined) this.reported = undefined;
    const due =
      current === undefined
        ? this.reported !== undefined
        : this.reported === undefined ||
          Math.abs(current - this.reported) >= 1_000 ||
          now - this.reportedAt >= this.refreshMs;
    if (!port || !due) return undefined;
    const run = this.report(port, current, now).finally(() => {
      this.inFlight = undefined;
    });
    this.inFlight = run;
    return run;
  }

  /**
   * The latest answer any isolate reported, as a time (ms since the epoch); undefined if none, unreachable, slower
   * than `readTimeoutMs`, or `signal` aborted first. Never rejects.
   */
  async shared(signal?: AbortSignal): Promise<number | undefined> {
    const port = this.options.port;
    if (!port) return undefined;
    try {
      const ms = await withTimeout(() => port.read(), this.readTimeoutMs, signal);
      // Over RPC: only a duration ahead is a limit (not NaN, negative or anything else).
      return typeof ms === "number" && ms > 0 && Number.isFinite(ms) ? this.clock.now() + ms : undefined;
    } catch (error) {
      // The caller giving up (its check's deadline) says nothing of the coordinator.
      if (!signal?.aborted) this.failed(error);
      return undefined;
    }
  }

  private async report(port: QueueLimitPort, until: number | undefined, now: number): Promise<void> {
    try {
      await withTimeout(
        () => port.report(until === undefined ? undefined : Math.max(0, until - now)),
        this.timeoutMs,
      );
      this.reported = until;
      this.reportedAt = now;
      if (this.unreachable) this.options.log?.("queue limit: coordinator reachable again", {});
      this.unreachable = false;
    } catch (error) {
      this.failed(error);
    }
  }

  private failed(error: unknown): void {
    if (this.unreachable) return;
    this.unreachable = true;
    this.options.log?.("queue limit: coordinator unreachable; /readyz shows this isolate's own", {
      error: errorFields(error),
    });
  }
}

/**
 * `transport` whose queue answers `limit` holds (its `rateLimitedUntil`), reporting a change after the send that made
 * it. Outside the breaker's guard, so the report's time is not the broker's.
 */
export function limitReportingTransport(transport: Transport, limit: QueueLimit): Transport {
  return {
    send: async (envelopes: Envelope[]) => {
      try {
        await transport.send(envelopes);
      } finally {
        // No await at all unless there is a change to report: a queue that takes every publish costs nothing here.
        const report = limit.flush();
        if (report) await report;
      }
    },
    ...(transport.availableInMs ? { availableInMs: () => transport.availableInMs?.() } : {}),
    ...(transport.retryAfterMs ? { retryAfterMs: (error) => transport.retryAfterMs?.(error) } : {}),
    rateLimitedUntil: () => limit.rateLimitedUntil(),
  };
}
