// The console's ports: what a node hands it to show (topology, breakers, broker, events, actors, traces).
import type { ActorAddress, ActorSnapshot } from "../../actors/runtime/index.ts";
import type { Clock } from "../../shared/clock/index.ts";
import type { Envelope } from "../../shared/envelope/index.ts";
import type { BreakerSnapshot } from "../../shared/resilience/index.ts";
import type { AdminEvents } from "../audit/admin-events.ts";
import type { ConsoleSessions, SessionOptions } from "./session.ts";

export interface ConsoleTopology {
  /** Actor types and the message types each accepts. */
  actors: Array<{ type: string; messages: string[] }>;
  /** Queue consumers that are not actors (billing, the read side, …). */
  consumers: string[];
  /** Which actor or consumer type receives each event type. */
  subscriptions: Array<{ event: string; actor: string }>;
}

/** One actor as the inspector shows it: the host's snapshot, plus its latest inbox and outbox rows. */
export interface ActorInspection extends ActorSnapshot {
  inbox?: Array<{ id: string; at: number }>;
  outbox?: Array<{ seq: number; type: string; target?: string; attempts: number; retryAt: number }>;
}

/** A trace as listed; times in epoch milliseconds. */
export interface TraceSummary {
  traceId: string;
  name?: string;
  startTimeMs?: number;
  durationMs?: number;
  spanCount?: number;
}

/** A span of a trace; times in epoch milliseconds. */
export interface ConsoleSpan {
  spanId: string;
  parentSpanId?: string | undefined;
  name: string;
  kind?: string | number | undefined;
  startTimeMs: number;
  endTimeMs: number;
  status?: string | undefined;
  attributes?: Record<string, unknown> | undefined;
}

/** The embedded trace store, when there is one (shared/telemetry/trace). */
export interface ConsoleTraces {
  recentTraces(limit?: number): Promise<TraceSummary[]> | TraceSummary[];
  spans(traceId: string): Promise<ConsoleSpan[]> | ConsoleSpan[];
}

/** An entry of the activity log and its position there: a decimal string, larger for every later entry. */
export interface ConsoleLogEntry {
  position: string;
  envelope: Envelope;
}

/**
 * The activity log as the console reads it (domain events and security events): the page's first rows, and the
 * tail its live stream follows. `ActivityLog` (actors/commerce/projections) is one.
 */
export interface ConsoleEventLog {
  /** The newest entries, newest first. */
  latestActivity(limit: number): Promise<ConsoleLogEntry[]>;
  /** The entries after `position`, oldest first, at most `limit`. */
  activityAfter(position: string, limit: number): Promise<ConsoleLogEntry[]>;
}

/**
 * What a message's target is to an operator, from the part of the system behind it, where the address says little:
 * `webhooks/<subscriptionId>` is a webhook subscription, and what matters is the URL its deliveries go to.
 */
export interface TargetDescription {
  /** What the target is, e.g. `webhook subscription whsub_…`. */
  label: string;
  /** Where its messages end up outside the system, e.g. the subscriber's URL; shown with its query values masked. */
  url?: string;
  /** A remark, e.g. that the subscription was deleted. */
  note?: string;
}

export interface ConsoleOptions {
  topology: ConsoleTopology;
  /** Records each dead letter replayed or deleted, and each purge, as `admin.*` with the session's admin. */
  adminEvents?: AdminEvents;
  /** The node's breakers (`Dependencies.snapshots()`). */
  breakers?: () => BreakerSnapshot[];
  /** The broker's REST API (the embedded broker, or QStash): called server-side with its token. */
  broker?: {
    url: string;
    token: string;
    /**
     * Runs each call through the node's `broker` breaker and timeout (`dependencies.call("broker", …)`), as the
     * relays' publishes are: while the breaker is open the console answers 503 at once, and its failed calls count
     * towards opening it (a 5xx or no answer is a failure; a 4xx is the broker answering). Without it, each call has
     * its own 5 s timeout.
     */
    guard?: <T>(call: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal) => Promise<T>;
    /** How its API is called. Default: the global fetch. A node's trusts a self-hosted broker's CA (QSTASH_CA_FILE). */
    fetch?: (input: string, init: RequestInit) => Promise<Response>;
  };
  /**
   * Describes the targets of dead letters (the dead-letter table); undefined for a target it does not know, which is
   * then shown as its actor address. Must never return a secret.
   */
  describeTarget?: (target: ActorAddress) => Promise<TargetDescription | undefined>;
  /** The activity log: the events section, and its live stream at /_console/events/stream. */
  events?: ConsoleEventLog;
  /** One actor's state, inbox and outbox; absent where actors run on a remote host. */
  inspect?: (address: { type: string; key: string }) => ActorInspection | Promise<ActorInspection>;
  traces?: ConsoleTraces;
  /** Where there is no trace store, why: the traces section says so instead of "tracing not configured". */
  tracesElsewhere?: string;
  /** Console sessions (edge/console/session.ts): how long one lasts, how many are held. */
  sessions?: SessionOptions;
  /**
   * Sessions kept elsewhere than this app's memory (edge/console/signed-session.ts on Workers, built once per
   * isolate); `sessions` is then unused.
   */
  sessionStore?: ConsoleSessions;
  /**
   * The live stream's knobs (edge/console/live.ts); the defaults suit a node. `false`: no live stream (Workers),
   * and the events section is the newest entries as of the page's load.
   */
  live?: LiveOptions | false;
  /** Aborted when the node shuts down: every live stream ends, so the server's graceful stop is not held up. */
  signal?: AbortSignal;
}

export interface LiveOptions {
  /** How often the shared tail reads the log for new entries, in ms. Default 500. */
  intervalMs?: number;
  /** A comment frame on each idle stream this often, in ms, so proxies keep the connection. Default 15,000. */
  heartbeatMs?: number;
  /** Streams open at once; one more is answered 503. Default 32. */
  maxStreams?: number;
  /**
   * Told when the tail cannot read the log (Postgres down, its breaker open), once per outage: the streams stay
   * open and each tick retries. Must not throw.
   */
  onError?: (error: unknown) => void;
  /**
   * How long a hole in the log's positions is waited for before the entries after it are sent, in ms: a position
   * taken by an insert that has not committed yet, or never will (a duplicate, a rollback). Default 2,000.
   */
  settleMs?: number;
  /** Only its monotonic time is read (how long a hole has been there). Default `systemClock`. */
  clock?: Clock;
}
