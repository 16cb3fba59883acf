// The local host's store: every actor's state, inbox, outbox, timers and kv in one SQLite file, group-committed.
import type { Envelope } from "../../../shared/envelope/index.ts";
import {
  type ActorStorage,
  GroupCommit,
  nextMacrotask,
  type InboxRecord,
  type OutboxFailure,
  type OutboxRecord,
  type OutboxStore,
  type StoredState,
  type TimerRecord,
  type TurnCommit,
  type ActorSnapshot,
} from "../../runtime/index.ts";
import { type SqlDatabase, type SqlStatement, schema, schemaVersion } from "./sql.ts";

export interface DueTimer extends TimerRecord {
  actor: string;
  attempts: number;
}

export class LocalStore implements OutboxStore {
  private readonly q: Record<string, SqlStatement>;
  private readonly commits: GroupCommit<ActorStorageView>;

  constructor(private readonly db: SqlDatabase) {
    db.exec(schema);
    const found = db.prepare("SELECT value FROM edgewise_meta WHERE name = 'schema'").get()?.value;
    if (found === undefined) {
      db.prepare("INSERT INTO edgewise_meta (name, value) VALUES ('schema', ?)").run(String(schemaVersion));
    } else if (Number(found) > schemaVersion) {
      throw new Error(`data dir was written by a newer Edgewise (store schema ${found} > ${schemaVersion})`);
    }
    const sql = {
      loadState: "SELECT version, state FROM actor_state WHERE actor = ?",
      hasState: "SELECT 1 AS found FROM actor_state WHERE actor = ?",
      saveState:
        "INSERT INTO actor_state (actor, version, state) VALUES (?, ?, ?) ON CONFLICT (actor) DO UPDATE SET version = excluded.version, state = excluded.state",
      inbox: "SELECT reply FROM inbox WHERE actor = ? AND id = ?",
      addInbox: "INSERT INTO inbox (actor, id, reply, at) VALUES (?, ?, ?, ?)",
      // Oldest first, by inbox_by_time, at most a batch: see the host's pruneInbox.
      pruneInbox:
        "DELETE FROM inbox WHERE (id, actor) IN (SELECT id, actor FROM inbox WHERE at < ? ORDER BY at LIMIT ?)",
      addOutbox: "INSERT INTO outbox (actor, envelope) VALUES (?, ?)",
      // The page's sizes come from the rows' headers (octet_length reads no content); only the envelopes within
      // the byte budget are read.
      pendingOutbox: `WITH due AS (
          SELECT seq, octet_length(envelope) AS bytes FROM outbox o
          WHERE NOT EXISTS (
            SELECT 1 FROM outbox p WHERE p.actor = o.actor AND p.retry_at > ? AND p.retry_at <= ?
          ) ORDER BY seq LIMIT ?
        ), page AS (SELECT seq, SUM(bytes) OVER (ORDER BY seq) - bytes AS before FROM due)
        SELECT o.seq, o.actor, o.envelope, o.attempts FROM page JOIN outbox o ON o.seq = page.seq
        WHERE page.before < ? ORDER BY o.seq`,
      deleteOutbox: "DELETE FROM outbox WHERE seq = ?",
      failOutbox: "UPDATE outbox SET attempts = ?, retry_at = ? WHERE seq = ?",
      // An actor is due once its latest backoff has passed (order per actor), so the minimum is over actors.
      nextOutbox: "SELECT MIN(due) AS at FROM (SELECT MAX(retry_at) AS due FROM outbox GROUP BY actor)",
      countOutbox: "SELECT COUNT(*) AS n FROM outbox WHERE actor = ?",
      outboxBacklog:
        "SELECT COUNT(*) AS n, (SELECT envelope FROM outbox ORDER BY seq LIMIT 1) AS oldest FROM outbox",
      addTimer:
        "INSERT INTO timers (actor, id, at, envelope) VALUES (?, ?, ?, ?) ON CONFLICT (actor, id) DO UPDATE SET at = excluded.at, envelope = excluded.envelope",
      removeTimer: "DELETE FROM timers WHERE actor = ? AND id = ?",
      dueTimers: "SELECT actor, id, at, envelope, attempts FROM timers WHERE at <= ? ORDER BY at LIMIT ?",
      // Only the firing that failed: a turn may have replaced the timer under the same id since.
      retryTimer:
        "UPDATE timers SET at = ?, attempts = ? WHERE actor = ? AND id = ? AND json_extract(envelope, '$.id') = ?",
      nextTimer: "SELECT MIN(at) AS at FROM timers",
      actorTimers: "SELECT id, at, envelope FROM timers WHERE actor = ? ORDER BY at",
      countInbox: "SELECT COUNT(*) AS n FROM inbox WHERE actor = ?",
      kvGet: "SELECT value FROM kv WHERE actor = ? AND key = ?",
      kvPut:
        "INSERT INTO kv (actor, key, value) VALUES (?, ?, ?) ON CONFLICT (actor, key) DO UPDATE SET value = excluded.value",
      kvDelete: "DELETE FROM kv WHERE actor = ? AND key = ?",
    };
    this.q = Object.fromEntries(Object.entries(sql).map(([name, text]) => [name, db.prepare(text)]));
    this.commits = new GroupCommit<ActorStorageView>({
      defer: nextMacrotask,
      write: (batch) =>
        db.transaction(() => {
          for (const entry of batch) this.write(entry.view.actor, entry.commit);
        }),
    });
  }

  /** A fresh storage view for one activation of one actor. */
  storageFor(actor: string): ActorStorageView {
    return new ActorStorageView(this, actor);
  }

  loadState(actor: string): StoredState | undefined {
    const row = this.q.loadState!.get(actor);
    return row ? { version: Number(row.version), state: JSON.parse(String(row.state)) } : undefined;
  }

  /** Whether `actor` has committed state: one lookup of actor_state's primary key, the state itself not read. */
  hasState(actor: string): boolean {
    return this.q.hasState!.get(actor) !== undefined;
  }

  inbox(actor: string, id: string): InboxRecord | undefined {
    const row = this.q.inbox!.get(actor, id);
    if (!row) return undefined;
    return { replyJson: row.reply === null ? undefined : String(row.reply) };
  }

  kvGet(actor: string, key: string): unknown {
    const row = this.q.kvGet!.get(actor, key);
    return row ? JSON.parse(String(row.value)) : undefined;
  }

  enqueueCommit(view: ActorStorageView, commit: TurnCommit): Promise<void> {
    return this.commits.enqueue(view, commit);
  }

  /** Writes every queued turn now (one transaction, one fsync). */
  flush(): void {
    this.commits.flush();
  }

  private write(actor: string, commit: TurnCommit): void {
    this.q.saveState!.run(actor, commit.version, commit.stateJson ?? JSON.stringify(commit.state));
    if (commit.inbox) {
      this.q.addInbox!.run(actor, commit.inbox.id, commit.inbox.replyJson ?? null, commit.inbox.at);
    }
    for (const envelope of commit.outbox) this.q.addOutbox!.run(actor, JSON.stringify(envelope));
    for (const id of commit.timersRemoved) this.q.removeTimer!.run(actor, id);
    for (const timer of commit.timersAdded) {
      this.q.addTimer!.run(actor, timer.id, timer.at, JSON.stringify(timer.envelope));
    }
    for (const [key, value] of commit.kv) {
      if (value === undefined) this.q.kvDelete!.run(actor, key);
      else this.q.kvPut!.run(actor, key, JSON.stringify(value));
    }
  }

  removeTimer(actor: string, id: string): void {
    this.q.removeTimer!.run(actor, id);
  }

  // --- OutboxStore, across all actors ---

  async pending(now: number, limit: number, maxBytes: number, notAfter: number): Promise<OutboxRecord[]> {
    return this.q.pendingOutbox!.all(now, notAfter, limit, maxBytes).map((row) => ({
      seq: Number(row.seq),
      actor: String(row.actor),
      envelope: JSON.parse(String(row.envelope)) as Envelope,
      attempts: Number(row.attempts),
    }));
  }

  async delivered(seqs: number[]): Promise<void> {
    this.db.transaction(() => {
      for (const seq of seqs) this.q.deleteOutbox!.run(seq);
    });
  }

  async failed(entries: OutboxFailure[]): Promise<void> {
    this.db.transaction(() => {
      for (const { seq, attempts, retryAt } of entries) this.q.failOutbox!.run(attempts, retryAt, seq);
    });
  }

  /**
   * How many entries wait, and when the oldest was written. There is no column for that: the envelope's `time`
   * is its turn's clock reading, which is when it was committed give or take the group commit.
   */
  outboxBacklog(): { pending: number; oldestAt: number | undefined } {
    const row = this.q.outboxBacklog!.get();
    const pending = Number(row?.n ?? 0);
    if (pending === 0 || row?.oldest === null || row?.oldest === undefined)
      return { pending, oldestAt: undefined };
    const time = Date.parse((JSON.parse(String(row.oldest)) as Envelope).time ?? "");
    return { pending, oldestAt: Number.isNaN(time) ? undefined : time };
  }

  async nextDue(): Promise<number | undefined> {
    const at = this.q.nextOutbox!.get()?.at;
    return at === null || at === undefined ? undefined : Number(at);
  }

  // --- timers and retention, across all actors ---

  dueTimers(now: number, limit: number): DueTimer[] {
    return this.q.dueTimers!.all(now, limit).map((row) => ({
      actor: String(row.actor),
      id: String(row.id),
      at: Number(row.at),
      envelope: JSON.parse(String(row.envelope)) as Envelope,
      attempts: Number(row.attempts),
    }));
  }

  retryTimer(actor: string, id: string, messageId: string, at: number, attempts: number): void {
    this.q.retryTimer!.run(at, attempts, actor, id, messageId);
  }

  nextTimerAt(): number | undefined {
    const at = this.q.nextTimer!.get()?.at;
    return at === null || at === undefined ? undefined : Number(at);
  }

  /**
   * Forgets up to `limit` handled message ids older than the retention window, oldest first. Returns how many were
   * removed: fewer than `limit` means none older are left.
   */
  pruneInbox(olderThan: number, limit = Number.MAX_SAFE_INTEGER): number {
    return this.q.pruneInbox!.run(olderThan, limit).changes;
  }

  /** What an operator or a test sees of one actor. */
  inspect(actor: string): ActorSnapshot {
    const stored = this.loadState(actor);
    return {
      state: stored?.state,
      version: stored?.version,
      inboxSize: Number(this.q.countInbox!.get(actor)?.n ?? 0),
      outboxSize: Number(this.q.countOutbox!.get(actor)?.n ?? 0),
      timers: this.q.actorTimers!.all(actor).map((row) => ({
        id: String(row.id),
        at: Number(row.at),
        type: (JSON.parse(String(row.envelope)) as Envelope).type,
      })),
    };
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}

/** One activation's view of the store. Once a commit fails, the view refuses further commits. */
export class ActorStorageView implements ActorStorage {
  poisoned: unknown;

  constructor(
    private readonly store: LocalStore,
    readonly actor: string,
  ) {}

  async load(): Promise<StoredState | undefined> {
    return this.store.loadState(this.actor);
  }

  async inbox(messageId: string): Promise<InboxRecord | undefined> {
    return this.store.inbox(this.actor, messageId);
  }

  async kvGet(key: string): Promise<unknown> {
    return this.store.kvGet(this.actor, key);
  }

  commit(commit: TurnCommit): Promise<void> {
    return this.store.enqueueCommit(this, commit);
  }

  async removeTimer(id: string): Promise<void> {
    this.store.removeTimer(this.actor, id);
  }
}
