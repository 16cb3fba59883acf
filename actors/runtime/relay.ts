// The outbox relay: drains committed messages to the transport, at least once, in order per actor, with backoff.
import type { Clock } from "../../shared/clock/index.ts";
import type { Envelope } from "../../shared/envelope/index.ts";
import type { OutboxFailure, OutboxRecord, OutboxStore } from "./storage.ts";
import type { SubscriptionRegistry } from "./subscriptions.ts";
import { sendTraced } from "./send-span.ts";
import type { Transport } from "./transport.ts";

export interface RelayPolicy {
  /** Entries read per pass. */
  batchSize: number;
  /**
   * Bytes of stored envelopes read per pass, at most (a pass reads at least one entry). Default 4 MiB
   * (`defaultRelayBatchBytes`).
   */
  batchBytes?: number;
  /**
   * Deliveries a pass hands to the transport, at most, once events are expanded per subscriber (a pass sends at
   * least one entry whatever it expands to). Default 1,000 (`defaultRelayMaxDeliveries`).
   */
  maxDeliveries?: number;
  /**
   * Their JSON, at most, counted as the QStash transport bounds a request (3 bytes a UTF-16 unit). Default 16 MiB
   * (`defaultRelayDeliveryBytes`).
   */
  deliveryBytes?: number;
  /** First retry delay; doubles per attempt, with jitter, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRelayPolicy: RelayPolicy = { batchSize: 256, baseDelayMs: 250, maxDelayMs: 60_000 };

/**
 * A pass's page is bounded in bytes as well as in entries. Messages may each be up to 1 MiB: a page of 256 of them,
 * parsed, expanded and encoded for the queue, took the node to 3 GB, and sending it in one call outlasted the
 * queue's timeout (5 s on a node), so the pass failed and was sent again, pass after pass.
 */
export const defaultRelayBatchBytes = 4 * 1024 * 1024;

/**
 * A pass's deliveries are bounded too, once events are expanded: on Workers a Durable Object's alarm is one
 * invocation, and each request to QStash (a /v2/batch of at most 100 messages and 4 MiB) is one of its subrequests, of
 * which the Free plan allows 50. A page of 256 events of 40 subscribers each made 103 requests in one alarm. With
 * these bounds a pass makes at most 19 (10 by count, 8 by size, one split), and the rest waits for the next pass,
 * which an object's alarm runs 1 ms later.
 */
export const defaultRelayMaxDeliveries = 1_000;
export const defaultRelayDeliveryBytes = 16 * 1024 * 1024;

export interface RelayPass {
  sent: number;
  failed: number;
  /** The last error the transport raised in this pass, for the host to log. */
  lastError?: unknown;
  /**
   * The messages that failed in this pass, in outbox order: each envelope's id, and the actor it concerns (whose
   * outbox holds it; billing's relay, a consumer's, names the actor it is addressed to).
   */
  failedMessages?: FailedMessage[];
}

export interface FailedMessage {
  id: string;
  actor: string;
}

/** How many message ids, and actors, a failed pass's warning names; its counts say how many in all. */
export const namedInWarning = 10;

/**
 * A failed pass as its warning's fields, bounded: the first message ids and actors, and how many of each. The ids
 * are the envelopes': the broker has none of its own for a publish it refused, and once a retry is stored, the
 * receiving side's log lines carry the same `message_id` beside the broker's `msg_…` id.
 */
export function relayFailureFields(failed: readonly FailedMessage[]): {
  message_ids: string[];
  message_count: number;
  actors: string[];
  actor_count: number;
} {
  const actors = [...new Set(failed.map((message) => message.actor))];
  return {
    message_ids: failed.slice(0, namedInWarning).map((message) => message.id),
    message_count: failed.length,
    actors: actors.slice(0, namedInWarning),
    actor_count: actors.length,
  };
}

export function retryDelay(
  attempts: number,
  policy: RelayPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * How far ahead of the wall clock a retry time can be when the relay writes it: the longest backoff, and a second to
 * spare. Retry times are stored (they outlive the process), so they are wall time; one further ahead than this was
 * written before the wall clock was stepped back, and is due. Without the bound an actor whose send had failed just
 * before a step back of an hour held all its messages (an order's saga) for the hour.
 */
export const retryHorizonMs = (policy: RelayPolicy): number => policy.maxDelayMs + 1_000;

/** The spread of retries that wait for a breaker's probe, so that they do not all arrive at once. */
const probeJitterMs = 1_000;

/**
 * The delay before a failed send is tried again: the backoff, but no later than when the queue's breaker lets a
 * call through again (`availableInMs`, plus jitter). Without that bound, a relay that failed all through an outage
 * waits up to `maxDelayMs` after the queue is back; with it, entries retry about every breaker reset during the
 * outage, each a fast local rejection, with the breaker letting one probe through to the queue.
 */
export function failedSendDelay(
  attempts: number,
  policy: RelayPolicy,
  availableInMs: number | undefined,
  random: () => number = Math.random,
): number {
  const backoff = retryDelay(attempts, policy, random);
  if (availableInMs === undefined) return backoff;
  return Math.min(backoff, availableInMs + Math.round(random() * probeJitterMs));
}

/**
 * The delay before `transport`'s failed send is tried again: `failedSendDelay`, and no shorter than a rate limit's
 * wait when the queue named one (`Transport.retryAfterMs`): retried sooner, each attempt is refused again and counts
 * against the limit. Capped at the longest backoff, as a retry time further ahead than `retryHorizonMs` would be read
 * as due at once (a daily limit may reset hours later).
 */
export function sendRetryDelay(
  transport: Transport,
  error: unknown,
  attempts: number,
  policy: RelayPolicy,
): number {
  const backoff = failedSendDelay(attempts, policy, transport.availableInMs?.());
  const asked = transport.retryAfterMs?.(error);
  return asked === undefined ? backoff : Math.max(backoff, Math.min(asked, policy.maxDelayMs));
}

/**
 * One pass over what is due. Each actor's entries stay in order; with subscriptions, each event expands into one
 * delivery per subscribed actor. All actors' deliveries go to the transport in one call, which keeps each actor's
 * order (a QStash batch is stored in its order) and costs the broker one commit instead of one per actor. If that
 * call fails, the pass falls back to one call per actor, so that a message the broker refuses holds back only its
 * own actor, and what the failed call did store is deduplicated by the broker; a call refused for a rate limit
 * (`Transport.retryAfterMs`) backs every actor off instead, until the limit resets. An event whose key selector throws
 * fails like a send: it retries (visible as outbox lag) and holds back that actor's later messages, rather than
 * being dropped or delivered out of order.
 */
export async function relayOnce(
  outbox: OutboxStore,
  transport: Transport,
  clock: Clock,
  policy: RelayPolicy = defaultRelayPolicy,
  subscriptions?: SubscriptionRegistry,
): Promise<RelayPass> {
  const now = clock.now();
  const entries = await outbox.pending(
    now,
    policy.batchSize,
    policy.batchBytes ?? defaultRelayBatchBytes,
    now + retryHorizonMs(policy),
  );
  const byActor = new Map<string, OutboxRecord[]>();
  for (const entry of entries) {
    const group = byActor.get(entry.actor);
    if (group) group.push(entry);
    else byActor.set(entry.actor, [entry]);
  }
  const pass: RelayPass = { sent: 0, failed: 0 };
  const sent: number[] = [];
  const failures: OutboxFailure[] = [];
  const failedEntries: OutboxRecord[] = [];
  const backOff = (group: OutboxRecord[], error: unknown, sending: boolean) => {
    pass.failed += group.length;
    pass.lastError = error;
    failedEntries.push(...group);
    const attempts = Math.max(...group.map((entry) => entry.attempts)) + 1;
    // A key selector that threw backs off as usual; a failed send also waits for the queue's breaker.
    const delay = sending ? sendRetryDelay(transport, error, attempts, policy) : retryDelay(attempts, policy);
    const retryAt = clock.now() + delay;
    for (const entry of group) failures.push({ seq: entry.seq, attempts, retryAt });
  };
  const succeeded = (group: OutboxRecord[]) => {
    for (const entry of group) sent.push(entry.seq);
    pass.sent += group.length;
  };

  // Expanded per actor first: a selector that throws holds back its own actor only. Entries whose deliveries would
  // take the pass over its bounds are left due, for the next pass (each actor's in order: a prefix of each is sent).
  const ready: Array<{ group: OutboxRecord[]; deliveries: Envelope[] }> = [];
  const room = {
    deliveries: policy.maxDeliveries ?? defaultRelayMaxDeliveries,
    bytes: policy.deliveryBytes ?? defaultRelayDeliveryBytes,
  };
  let full = false;
  for (const group of byActor.values()) {
    if (full) break;
    try {
      const taken: OutboxRecord[] = [];
      const deliveries: Envelope[] = [];
      // Counted against the pass once the whole group has expanded: a selector that throws partway backs the group
      // off, and what its earlier entries would have taken stays for the other actors.
      const left = { ...room };
      for (const entry of group) {
        const mine = subscriptions ? subscriptions.expand([entry.envelope]) : [entry.envelope];
        const bytes = mine.length * JSON.stringify(entry.envelope).length * 3;
        const first = ready.length === 0 && taken.length === 0;
        if (!first && (mine.length > left.deliveries || bytes > left.bytes)) {
          full = true;
          break;
        }
        taken.push(entry);
        deliveries.push(...mine);
        left.deliveries -= mine.length;
        left.bytes -= bytes;
      }
      if (taken.length > 0) ready.push({ group: taken, deliveries });
      Object.assign(room, left);
    } catch (error) {
      backOff(group, error, false);
    }
  }
  const together = ready.flatMap((one) => one.deliveries);
  let sentTogether = false;
  let rateLimited: { error: unknown } | undefined;
  if (ready.length > 1 && together.length > 0) {
    try {
      await sendTraced(transport, together);
      sentTogether = true;
    } catch (error) {
      // Each actor on its own below: the error it meets is the one recorded. Unless the queue refused for a rate
      // limit: it would refuse each of those calls too, one per actor, every one counted against the limit.
      if (transport.retryAfterMs?.(error) !== undefined) rateLimited = { error };
    }
  }
  if (sentTogether) for (const { group } of ready) succeeded(group);
  else if (rateLimited) for (const { group } of ready) backOff(group, rateLimited.error, true);
  else {
    await Promise.all(
      ready.map(async ({ group, deliveries }) => {
        try {
          if (deliveries.length > 0) await sendTraced(transport, deliveries);
        } catch (error) {
          backOff(group, error, true);
          return;
        }
        succeeded(group);
      }),
    );
  }
  // One write for the whole pass, and one for its failures: on the local host each is a transaction with an fsync
  // (a failed pass of 256 entries written one by one blocked the node for about a second). A crash before the
  // first only means these entries are sent again, and receivers deduplicate by message id; before the second,
  // that they are retried sooner.
  if (sent.length > 0) await outbox.delivered(sent);
  if (failures.length > 0) await outbox.failed(failures);
  if (failedEntries.length > 0) {
    // Sends fail concurrently, an actor each: the warning lists them in outbox order all the same.
    failedEntries.sort((a, b) => a.seq - b.seq);
    pass.failedMessages = failedEntries.map((entry) => ({ id: entry.envelope.id, actor: entry.actor }));
  }
  return pass;
}
