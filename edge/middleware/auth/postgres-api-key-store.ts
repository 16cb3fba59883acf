// The ApiKeyStore on Postgres (postgres.js): table `edgewise_api_keys`, on the node's one shared pool.
import type postgres from "postgres";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { recordGrant } from "../../../shared/postgres/recorded-grant.ts";
import {
  ensureSchema,
  type SchemaComponent,
  type SchemaMarkers,
} from "../../../shared/postgres/schema-marker.ts";
import type { ApiKeyRecord, ApiKeyRecorder, ApiKeyStore, ApiKeySummary, NewApiKey } from "./api-key-store.ts";

interface Row {
  id: string;
  secret_sha256: string;
  sub: string;
  scopes: string;
  name: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

// Scopes are stored space-separated, as in a JWT's `scope`: no array types needed from the driver.
export const apiKeysSchema: SchemaComponent = {
  name: "api_keys",
  version: 1,
  lock: 8245601,
  ddl: `
    CREATE TABLE IF NOT EXISTS edgewise_api_keys (
      id text PRIMARY KEY,
      secret_sha256 text NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
      sub text NOT NULL,
      scopes text NOT NULL,
      name text,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    );
    CREATE INDEX IF NOT EXISTS edgewise_api_keys_sub ON edgewise_api_keys (sub);
  `,
};

/** Generic over the pool's custom types, which do not matter here: the columns are text and timestamptz. */
export class PostgresApiKeyStore<Types extends Record<string, unknown> = Record<string, never>>
  implements ApiKeyStore
{
  /**
   * Takes the caller's pool and never opens one: the node shares a single pool, and the embedded PGlite
   * serves one connection only.
   */
  constructor(private readonly sql: postgres.Sql<Types>) {}

  /** Creates the table if missing; safe to run on every start and from several nodes at once. */
  migrate(markers?: SchemaMarkers): Promise<void> {
    return ensureSchema(this.sql, apiKeysSchema, markers);
  }

  async create(key: NewApiKey, record?: ApiKeyRecorder, signal?: AbortSignal): Promise<ApiKeyRecord> {
    const insert = async (sql: postgres.TransactionSql<Types>) => {
      const [row] = await sql<Row[]>`
        INSERT INTO edgewise_api_keys (id, secret_sha256, sub, scopes, name)
        VALUES (${key.id}, ${key.secretHash}, ${key.sub}, ${key.scopes.join(" ")}, ${key.name})
        RETURNING *`;
      return fromRow(row as Row);
    };
    try {
      // The key and its record (with an activity log) in one transaction: a key whose record failed never existed;
      // nor one whose caller stopped waiting before COMMIT, with a log or without.
      return (await this.sql.begin(async (tx) =>
        recordGrant(tx, await insert(tx), record, signal, "the API key"),
      )) as ApiKeyRecord;
    } catch (error) {
      if ((error as { code?: unknown }).code === "23505") {
        throw new EdgewiseError("conflict", "an API key with this id exists", { cause: error });
      }
      throw error;
    }
  }

  async find(id: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.sql<Row[]>`SELECT * FROM edgewise_api_keys WHERE id = ${id}`;
    return row ? fromRow(row) : undefined;
  }

  async revoke(id: string): Promise<boolean> {
    const rows = await this.sql`
      UPDATE edgewise_api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${id} RETURNING id`;
    return rows.length > 0;
  }

  async list(filter: { sub?: string } = {}): Promise<ApiKeySummary[]> {
    const rows =
      filter.sub === undefined
        ? await this.sql<Row[]>`SELECT * FROM edgewise_api_keys ORDER BY created_at, id`
        : await this.sql<
            Row[]
          >`SELECT * FROM edgewise_api_keys WHERE sub = ${filter.sub} ORDER BY created_at, id`;
    return rows.map((row) => {
      const { secretHash: _, ...summary } = fromRow(row);
      return summary;
    });
  }
}

function fromRow(row: Row): ApiKeyRecord {
  return {
    id: row.id,
    secretHash: row.secret_sha256,
    sub: row.sub,
    scopes: row.scopes.split(" ").filter(Boolean),
    name: row.name,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}
