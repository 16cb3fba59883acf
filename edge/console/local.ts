// The console's view of a node's own actors: the topology from their definitions, and the inspector on SQLite.
import type { SqlDatabase } from "../../actors/hosts/local/sql.ts";
import {
  type ActorSnapshot,
  type AnyActorDefinition,
  formatAddress,
  type Subscription,
} from "../../actors/runtime/index.ts";
import type { ActorInspection, ConsoleTopology } from "./types.ts";

export function topologyOf(
  actors: readonly AnyActorDefinition[],
  consumers: readonly { type: string }[],
  subscriptions: readonly Subscription[],
): ConsoleTopology {
  return {
    actors: actors.map((definition) => ({
      type: definition.type,
      messages: Object.keys(definition.messages ?? {}),
    })),
    consumers: consumers.map((consumer) => consumer.type),
    subscriptions: subscriptions.map((s) => ({ event: s.event, actor: s.actor })),
  };
}

/**
 * An inspector over the local host: its snapshot (state, sizes, timers) plus the latest handled message ids and
 * the messages still waiting in the outbox, read from the host's SQLite file.
 */
export function localInspector(
  inspect: (address: { type: string; key: string }) => ActorSnapshot,
  db: SqlDatabase | undefined,
  limit = 20,
): (address: { type: string; key: string }) => ActorInspection {
  const inbox = db?.prepare("SELECT id, at FROM inbox WHERE actor = ? ORDER BY at DESC LIMIT ?");
  const outbox = db?.prepare(
    "SELECT seq, envelope, attempts, retry_at FROM outbox WHERE actor = ? ORDER BY seq LIMIT ?",
  );
  return (address) => {
    const snapshot = inspect(address);
    const actor = formatAddress(address);
    return {
      ...snapshot,
      ...(inbox
        ? { inbox: inbox.all(actor, limit).map((row) => ({ id: String(row.id), at: Number(row.at) })) }
        : {}),
      ...(outbox
        ? {
            outbox: outbox.all(actor, limit).map((row) => {
              const envelope = safeJson(String(row.envelope));
              return {
                seq: Number(row.seq),
                type: typeof envelope?.type === "string" ? envelope.type : "?",
                ...(typeof envelope?.target === "string" ? { target: envelope.target } : {}),
                attempts: Number(row.attempts),
                retryAt: Number(row.retry_at),
              };
            }),
          }
        : {}),
    };
  };
}

function safeJson(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
