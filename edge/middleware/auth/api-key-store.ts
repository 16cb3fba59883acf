// The API key store port: records keyed by id, holding only the secret's hash; plus an in-memory adapter.
import type postgres from "postgres";
import { EdgewiseError } from "../../../shared/errors/index.ts";

export interface NewApiKey {
  id: string;
  /** Hex SHA-256 of the key's secret part; the secret itself is never stored. */
  secretHash: string;
  sub: string;
  scopes: readonly string[];
  name: string | null;
}

export interface ApiKeyRecord extends NewApiKey {
  createdAt: Date;
  /** Set once by `revoke`; a revoked key never works again. */
  revokedAt: Date | null;
}

/** What `list` shows: everything but the hash. */
export type ApiKeySummary = Omit<ApiKeyRecord, "secretHash">;

/**
 * Writes the record of a key created (the activity log's `admin.api_key_created`, on the same database) on the
 * key's own transaction, given the key as written: both commit or neither does, and if it throws no key is made
 * (`unavailable`). The store knows nothing of what the record says or where it goes. A revocation takes none: it
 * never waits on its record.
 */
export type ApiKeyRecorder = (tx: postgres.TransactionSql, key: ApiKeyRecord) => Promise<unknown>;

export interface ApiKeyStore {
  /**
   * Fails with `conflict` if the id is taken. With `record`, the key is created only with its record, in one
   * transaction; and once `signal` (the caller's deadline) has fired before its COMMIT, the caller has been answered
   * with an error, so the key and its record are rolled back (`timeout`) rather than committed after that answer (a
   * lock wait can outlast it). Without `record` (no activity log) the same holds for the key alone: it is still
   * made in a transaction, and rolled back once `signal` has fired before its COMMIT.
   */
  create(key: NewApiKey, record?: ApiKeyRecorder, signal?: AbortSignal): Promise<ApiKeyRecord>;
  find(id: string): Promise<ApiKeyRecord | undefined>;
  /** True when the key exists (revoking twice is not an error); false when it never did. */
  revoke(id: string): Promise<boolean>;
  list(filter?: { sub?: string }): Promise<ApiKeySummary[]>;
}

/**
 * For tests and single-process demos: same contract as the Postgres adapter, nothing persisted. It has no
 * transaction to write a record in, so it refuses a recorder rather than create a key without its record; a caller's
 * deadline already fired refuses the key (`timeout`), as the Postgres adapter rolls it back.
 */
export class MemoryApiKeyStore implements ApiKeyStore {
  readonly #keys = new Map<string, ApiKeyRecord>();
  /** How many times `find` was called: lets tests see the verifier's cache at work. */
  finds = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async create(key: NewApiKey, recorder?: ApiKeyRecorder, signal?: AbortSignal): Promise<ApiKeyRecord> {
    if (recorder) throw noTransaction();
    // Its "COMMIT" is the set below: a caller already answered (504) must not find the key made after all.
    if (signal?.aborted) {
      throw new EdgewiseError("timeout", "the caller stopped waiting: the API key is not created", {
        cause: signal.reason,
      });
    }
    if (this.#keys.has(key.id)) {
      throw new EdgewiseError("conflict", "an API key with this id exists");
    }
    const record: ApiKeyRecord = {
      ...key,
      scopes: [...key.scopes],
      createdAt: new Date(this.now()),
      revokedAt: null,
    };
    this.#keys.set(key.id, record);
    return { ...record };
  }

  async find(id: string): Promise<ApiKeyRecord | undefined> {
    this.finds++;
    const record = this.#keys.get(id);
    return record ? { ...record } : undefined;
  }

  async revoke(id: string): Promise<boolean> {
    const record = this.#keys.get(id);
    if (!record) return false;
    record.revokedAt ??= new Date(this.now());
    return true;
  }

  async list(filter: { sub?: string } = {}): Promise<ApiKeySummary[]> {
    return [...this.#keys.values()]
      .filter((record) => filter.sub === undefined || record.sub === filter.sub)
      .map(({ secretHash: _, ...summary }) => summary);
  }
}

function noTransaction(): EdgewiseError {
  return new EdgewiseError("internal", "the in-memory API key store cannot record a change in a transaction");
}
