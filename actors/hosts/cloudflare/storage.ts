// One Durable Object's SQLite as its actor's store: state, inbox, outbox (the OutboxStore port), timers and kv.
import type { Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type {
  InboxRecord,
  OutboxFailure,
  OutboxRecord,
  OutboxStore,
  StoredState,
  TimerRecord,
  TurnCommit,
  ActorSnapshot,
} from "../../runtime/index.ts";

/** The slice of `DurableObjectStorage` the store needs. */
export type DurableSqlStorage = Pick<DurableObjectStorage, "sql" | "transactionSync">;

export interface DueTimer extends TimerRecord {
  attempts: number;
}

// One object is one actor, so no table has an actor column. `meta.address` is the `type/key` the object
// serves: a Durable Object cannot reliably learn the name it was reached by, so the first commit records it.
const schema = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (id TEXT PRIMARY KEY, reply TEXT, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inbox_by_time ON inbox (at);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY, envelope TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, retry_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS timers (
  id TEXT PRIMARY KEY, at INTEGER NOT NULL, envelope TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_by_time ON timers (at);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

type Row = Record<string, SqlStorageValue>;

export class DurableActorStore implements OutboxStore {
  private readonly sql: SqlStorage;
  private storedAddress: string | undefined;
  /**
   * Whether this object's tables exist. They are created by its first commit, not when it wakes: a read of an
   * address that was never written (a GET of an unknown sku) must leave nothing stored, or any reader could make
   * Cloudflare keep, and bill, one object per name it cares to ask for. Until then every read finds nothing.
   */
  private hasTables: boolean;

  constructor(private readonly storage: DurableSqlStorage) {
    this.sql = storage.sql;
    this.hasTables =
      this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state'").toArray().length >
      0;
    // Tables and indexes added since this object was created.
    if (this.hasTables) this.sql.exec(schema);
    this.storedAddress = this.first("SELECT value FROM meta WHERE name = 'address'")?.value as
      | string
      | undefined;
  }

  /** The `type/key` this object serves, once a turn has committed. */
  get address(): string | undefined {
    return this.storedAddress;
  }

  /** Refuses to serve an address other than the one this object already committed under. */
  claim(address: string): void {
    if (this.storedAddress !== undefined && this.storedAddress !== address) {
      throw new EdgewiseError(
        "envelope.invalid",
        `delivery for ${address} reached the Durable Object of ${this.storedAddress}`,
      );
    }
  }

  loadState(): StoredState | undefined {
    const row = this.first("SELECT version, state FROM state WHERE id = 1");
    return row ? { version: Number(row.version), state: JSON.parse(String(row.state)) } : undefined;
  }

  inbox(id: string): InboxRecord | undefined {
    const row = this.first("SELECT reply FROM inbox WHERE id = ?", id);
    if (!row) return undefined;
    return { replyJson: row.reply === null ? undefined : String(row.reply) };
  }

  kvGet(key: string): unknown {
    const row = this.first("SELECT value FROM kv WHERE key = ?", key);
    return row ? JSON.parse(String(row.value)) : undefined;
  }

  /** Writes turns in one SQLite transaction: all of them or none. */
  writeTurns(turns: ReadonlyArray<{ address: string; commit: TurnCommit }>): void {
    this.storage.transactionSync(() => {
      if (!this.hasTables) this.sql.exec(schema);
      for (const { address, commit } of turns) this.write(address, commit);
    });
    this.hasTables = true;
    const last = turns.at(-1);
    if (last) this.storedAddress ??= last.address;
  }

  private write(address: string, commit: TurnCommit): void {
    if (this.storedAddress === undefined) {
      this.sql.exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('address', ?)", address);
    }
    this.sql.exec(
      "INSERT INTO state (id, version, state) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version, state = excluded.state",
      commit.version,
      commit.stateJson ?? JSON.stringify(commit.state),
    );
    if (commit.inbox) {
      const { id, replyJson, at } = commit.inbox;
      this.sql.exec("INSERT INTO inbox (id, reply, at) VALUES (?, ?, ?)", id, replyJson ?? null, at);
    }
    for (const envelope of commit.outbox) {
      this.sql.exec("INSERT INTO outbox (envelope) VALUES (?)", JSON.stringify(envelope));
    }
    for (const id of commit.timersRemoved) this.sql.exec("DELETE FROM timers WHERE id = ?", id);
    for (const timer of commit.timersAdded) {
      this.sql.exec(
        "INSERT INTO timers (id, at, envelope) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at, envelope = excluded.envelope, attempts = 0",
        timer.id,
        timer.at,
        JSON.stringify(timer.envelope),
      );
    }
    for (const [key, value] of commit.kv) {
      if (value === undefined) this.sql.exec("DELETE FROM kv WHERE key = ?", key);
      else {
        this.sql.exec(
          "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          key,
          JSON.stringify(value),
        );
      }
    }
  }

  removeTimer(id: string): void {
    if (!this.hasTables) return;
    this.sql.exec("DELETE FROM timers WHERE id = ?", id);
  }

  // --- OutboxStore: this one actor's outbox ---

  async pending(now: number, limit: number, maxBytes: number, notAfter: number): Promise<OutboxRecord[]> {
    if (!this.hasTables) return [];
    // Order per actor: nothing leaves while an earlier entry waits out its backoff. Sizes come from the rows'
    // headers (octet_length reads no content); only the envelopes within the byte budget are read, since an
    // object's isolate has 128 MB and a page of large messages would not fit.
    const rows = this.sql
      .exec(
        `WITH due AS (
          SELECT seq, octet_length(envelope) AS bytes FROM outbox
          WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE retry_at > ? AND retry_at <= ?) ORDER BY seq LIMIT ?
        ), page AS (SELECT seq, SUM(bytes) OVER (ORDER BY seq) - bytes AS before FROM due)
        SELECT o.seq, o.envelope, o.attempts FROM page JOIN outbox o ON o.seq = page.seq
        WHERE page.before < ? ORDER BY o.seq`,
        now,
        notAfter,
        limit,
        maxBytes,
      )
      .toArray();
    const actor = this.storedAddress ?? "";
    return rows.map((row) => ({
      seq: Number(row.seq),
      actor,
      envelope: JSON.parse(String(row.envelope)) as Envelope,
      attempts: Number(row.attempts),
    }));
  }

  async delivered(seqs: number[]): Promise<void> {
    if (!this.hasTables) return;
    this.storage.transactionSync(() => {
      for (const seq of seqs) this.sql.exec("DELETE FROM outbox WHERE seq = ?", seq);
    });
  }

  async failed(entries: OutboxFailure[]): Promise<void> {
    if (!this.hasTables) return;
    this.storage.transactionSync(() => {
      for (const { seq, attempts, retryAt } of entries)
        this.sql.exec("UPDATE outbox SET attempts = ?, retry_at = ? WHERE seq = ?", attempts, retryAt, seq);
    });
  }

  async nextDue(): Promise<number | undefined> {
    return this.nextOutboxAt();
  }

  /** When the outbox is next due (its latest backoff), or undefined when it is empty. */
  nextOutboxAt(): number | undefined {
    return numberOrUndefined(this.first("SELECT MAX(retry_at) AS at FROM outbox")?.at);
  }

  // --- timers and retention ---

  dueTimers(now: number, limit: number): DueTimer[] {
    if (!this.hasTables) return [];
    return this.sql
      .exec("SELECT id, at, envelope, attempts FROM timers WHERE at <= ? ORDER BY at LIMIT ?", now, limit)
      .toArray()
      .map((row) => ({
        id: String(row.id),
        at: Number(row.at),
        envelope: JSON.parse(String(row.envelope)) as Envelope,
        attempts: Number(row.attempts),
      }));
  }

  /** Only the firing that failed: a turn may have replaced the timer under the same id since. */
  retryTimer(id: string, messageId: string, at: number, attempts: number): void {
    if (!this.hasTables) return;
    this.sql.exec(
      "UPDATE timers SET at = ?, attempts = ? WHERE id = ? AND json_extract(envelope, '$.id') = ?",
      at,
      attempts,
      id,
      messageId,
    );
  }

  nextTimerAt(): number | undefined {
    return numberOrUndefined(this.first("SELECT MIN(at) AS at FROM timers")?.at);
  }

  /** When the oldest remembered message id was handled, or undefined when the inbox is empty. */
  oldestInboxAt(): number | undefined {
    return numberOrUndefined(this.first("SELECT MIN(at) AS at FROM inbox")?.at);
  }

  /** Forgets handled message ids older than the retention window. Returns how many were removed. */
  pruneInbox(olderThan: number): number {
    if (!this.hasTables) return 0;
    return this.sql.exec("DELETE FROM inbox WHERE at < ?", olderThan).rowsWritten;
  }

  inspect(): ActorSnapshot {
    const stored = this.loadState();
    return {
      state: stored?.state,
      version: stored?.version,
      inboxSize: Number(this.first("SELECT COUNT(*) AS n FROM inbox")?.n ?? 0),
      outboxSize: Number(this.first("SELECT COUNT(*) AS n FROM outbox")?.n ?? 0),
      timers: (this.hasTables
        ? this.sql.exec("SELECT id, at, envelope FROM timers ORDER BY at").toArray()
        : []
      ).map((row) => ({
        id: String(row.id),
        at: Number(row.at),
        type: (JSON.parse(String(row.envelope)) as Envelope).type,
      })),
    };
  }

  private first(query: string, ...bindings: unknown[]): Row | undefined {
    if (!this.hasTables) return undefined;
    const next = this.sql.exec<Row>(query, ...bindings).next();
    return next.done ? undefined : next.value;
  }
}

function numberOrUndefined(value: SqlStorageValue | undefined): number | undefined {
  return value === null || value === undefined ? undefined : Number(value);
}
