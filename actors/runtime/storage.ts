// The storage port: the few operations a turn needs, committed atomically. Hosts implement it.
import type { Envelope } from "../../shared/envelope/index.ts";

export interface StoredState {
  state: unknown;
  version: number;
}

export interface InboxRecord {
  /** JSON of the reply the handler returned, so a repeated ask gets the same answer. */
  replyJson: string | undefined;
}

export interface TimerRecord {
  id: string;
  /** Epoch ms when it is due. */
  at: number;
  envelope: Envelope;
}

/** Everything one turn changes. A host writes all of it or none of it. */
export interface TurnCommit {
  state: unknown;
  /** `state` as JSON, when the turn engine already made it (to check its size): stores write it as is. */
  stateJson?: string;
  version: number;
  /** The handled message; absent for a migration-only commit. */
  inbox?: { id: string; replyJson: string | undefined; at: number };
  outbox: Envelope[];
  timersAdded: TimerRecord[];
  /** Cancelled timers, and the timer this turn handled. */
  timersRemoved: string[];
  /** Extra per-actor records written with `ctx.kv` (undefined deletes). */
  kv: Array<[key: string, value: unknown]>;
}

/** One actor's storage, as the turn engine sees it. */
export interface ActorStorage {
  load(): Promise<StoredState | undefined>;
  inbox(messageId: string): Promise<InboxRecord | undefined>;
  kvGet(key: string): Promise<unknown>;
  /** Resolves once the commit is durable. Replies wait for it (the output gate). */
  commit(commit: TurnCommit): Promise<void>;
  /** Removes a fired timer without a turn (its message was already handled). */
  removeTimer(id: string): Promise<void>;
}

export interface OutboxRecord {
  seq: number;
  /** `type/key` of the actor that wrote it; the relay keeps order per actor. */
  actor: string;
  envelope: Envelope;
  attempts: number;
}

export interface OutboxFailure {
  seq: number;
  attempts: number;
  retryAt: number;
}

/** The outbox as the relay sees it: one actor's on Durable Objects, all actors' on the local host. */
export interface OutboxStore {
  /**
   * Entries due now, oldest first: at most `limit`, and no more than `maxBytes` of stored envelopes, except that the
   * first due entry is always returned, whatever its size. An entry is due once its retry time is at most `now`, or
   * past `notAfter`: no backoff reaches that far, so it was set before the wall clock was stepped back.
   */
  pending(now: number, limit: number, maxBytes: number, notAfter: number): Promise<OutboxRecord[]>;
  delivered(seqs: number[]): Promise<void>;
  /** Records a pass's failed entries, all in one write: each entry's attempts so far and when it is due again. */
  failed(entries: OutboxFailure[]): Promise<void>;
  /** When the next entry becomes due, if any. */
  nextDue(): Promise<number | undefined>;
}

/** What an operator or a test sees of one actor, on every host. */
export interface ActorSnapshot {
  state: unknown;
  version: number | undefined;
  inboxSize: number;
  outboxSize: number;
  timers: Array<{ id: string; at: number; type: string }>;
}
