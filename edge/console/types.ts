// The console's ports: what a node hands it to show (topology, breakers, broker, events, actors, traces).
import type { ActorSnapshot } from "../../actors/runtime/index.ts";
import type { Envelope } from "../../shared/envelope/index.ts";
import type { BreakerSnapshot } from "../../shared/resilience/index.ts";

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

export interface ConsoleOptions {
  topology: ConsoleTopology;
  /** The node's breakers (`Dependencies.snapshots()`). */
  breakers?: () => BreakerSnapshot[];
  /** The broker's REST API (the embedded broker, or QStash): called server-side with its token. */
  broker?: { url: string; token: string };
  /** The latest events, newest first (the activity log). */
  recentEvents?: (limit: number) => Promise<Envelope[]>;
  /** One actor's state, inbox and outbox; absent where actors run on a remote host. */
  inspect?: (address: { type: string; key: string }) => ActorInspection;
  traces?: ConsoleTraces;
  /** How often the page refreshes the event stream, in ms. Default 2000. */
  refreshMs?: number;
}
