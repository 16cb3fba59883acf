// One actor host per database: a node that hosts actors holds a Postgres advisory lock, so a second one cannot.
import { EdgewiseError } from "../shared/errors/index.ts";
import { connect, type Sql } from "./local/broker/db.ts";
import { checkSchema } from "./local/broker/search-path.ts";
import { PeriodicJob } from "./periodic-job.ts";

/**
 * Why: a node keeps its actors (stock, orders, points) in its own data dir, while billing, the read side and the
 * queue live in the shared Postgres. Two nodes on one DATABASE_URL (and schema) that both host actors would each
 * keep a copy of every actor: a sku restocked on one is still empty on the other, and the invariants of the order
 * saga no longer hold. More nodes run as gateways (`ACTOR_HOST_URL`) in front of one actor host.
 *
 * The lock is a transaction-level advisory lock, in a transaction held open on a connection of its own, so Postgres
 * releases it the moment the holder's process dies (no stale lease to expire). Not a session-level lock: behind a
 * transaction pooler (PgBouncer's pool_mode=transaction, Supavisor, Hyperdrive) a session lock stays with the
 * pooler's server connection, which other clients then share: a second node took the "held" lock again (advisory
 * locks are reentrant), and a dead node's lock outlived it. An open transaction keeps its server connection to
 * itself in every pooling mode. Fixed classid, arbitrary; the schema names the second key.
 */
export const LEASE_CLASS = 8245604;

export interface ActorHostLease {
  release(): Promise<void>;
}

export interface ActorHostLeaseOptions {
  url: string;
  schema?: string | undefined;
  /** Who this node is, as pg_stat_activity and the refusal of another node show it. */
  holder: string;
  /** How often the lease is checked; a connection that was lost and made again takes it back. Default 5 s. */
  checkEveryMs?: number;
  /** The lease was lost for good: another node took it while this one's connection was down. */
  onLost(error: EdgewiseError): void;
  /** What a refusal tells the user to do; a node's own start by default (`npm run backup` says its own). */
  remedy?: string;
}

const nodeRemedy =
  "Actors live in one node's data dir, so two would each keep their own copy. Stop the other node, or run " +
  "this one as a gateway in front of it (ACTOR_HOST_URL)";

/**
 * The lease's statements go in the simple query protocol: an extended-protocol SELECT leaves its unnamed portal, and
 * the portal's snapshot, open until the next one, so the open transaction held back every vacuum of the database.
 */
const simple = <T extends object[]>(sql: Sql, text: string) => sql.unsafe<T>(text).simple();

const held = async (sql: Sql): Promise<boolean> => {
  const [row] = await simple<Array<{ held: boolean }>>(
    sql,
    `SELECT count(*) > 0 AS held FROM pg_locks
     WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
       AND classid = ${LEASE_CLASS} AND objid = hashtext(current_schema())::oid AND objsubid = 2`,
  );
  return row?.held === true;
};

/**
 * After a failed check: true when the lease's transaction, and so its lock, is intact again. A check that fails on
 * a live connection (a cancel, a role's statement_timeout) aborts the transaction; rolling back to the savepoint
 * `take` set right after the lock keeps the lock (never the whole transaction: that freed the lock until the next
 * check, and a second host could start meanwhile). Tried again while it is itself cancelled or timed out (57014);
 * any other refusal means there is no lease transaction on this connection (one postgres.js remade).
 */
async function keepAfterFailedCheck(sql: Sql): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await simple(sql, "ROLLBACK TO SAVEPOINT lease_check");
      return true;
    } catch (error) {
      if ((error as { code?: string } | null)?.code !== "57014") return false;
    }
  }
  return false;
}

/** Opens the lease's transaction and locks in it; on refusal the transaction ends, so the connection is clean. */
async function take(sql: Sql): Promise<boolean> {
  // Ends a transaction that a failed check left aborted (its lock is then of no use); a warning when there is none.
  await simple(sql, "ROLLBACK");
  // One query: were the connection lost after BEGIN, postgres.js would run the lock on a new one outside any
  // transaction, where it is taken and let go at once, yet reads as taken. The server's idle-in-transaction and
  // transaction timeouts (a managed Postgres or an ALTER ROLE may set them) would end the lease's transaction, and
  // free the lease for another node, between two checks: off for this transaction (transaction_timeout is PG 17+).
  const results = await simple<Array<Array<{ taken?: boolean }>>>(
    sql,
    `BEGIN;
     SELECT set_config(name, '0', true) FROM pg_settings
     WHERE name IN ('idle_in_transaction_session_timeout', 'transaction_timeout');
     SELECT pg_try_advisory_xact_lock(${LEASE_CLASS}, hashtext(current_schema())) AS taken;
     SAVEPOINT lease_check`,
  );
  const taken = results.some((rows) => Array.isArray(rows) && rows[0]?.taken === true);
  if (!taken) await simple(sql, "ROLLBACK");
  return taken;
}

/** Takes the lease, or throws `config.invalid` naming the node that holds it. */
export async function acquireActorHostLease(options: ActorHostLeaseOptions): Promise<ActorHostLease> {
  const sql = await connect({
    url: options.url,
    max: 1,
    schema: options.schema,
    applicationName: `edgewise actor host ${options.holder}`.slice(0, 63),
    // After a reconnect, a statement prepared before the lease's transaction began may sit on another server
    // connection of a pooler.
    prepare: false,
  });
  try {
    // Keyed by the schema: one a pooler dropped would lock another deployment's.
    await checkSchema(sql, options.url, options.schema);
    if (!(await take(sql))) throw await heldElsewhere(sql, options.remedy);
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw error;
  }
  const retake = async (stopped: () => boolean) => {
    // A new session (the old one's connection broke): take the lock again, unless someone else has.
    if ((await take(sql)) || stopped()) return;
    const error = await heldElsewhere(sql, options.remedy);
    void watch.stop(); // not awaited: it waits for this very run
    options.onLost(error);
  };
  const watch: PeriodicJob = new PeriodicJob(async (stopped) => {
    try {
      if ((await held(sql)) || stopped()) return;
      await retake(stopped);
    } catch {
      // The check failed. On a live connection its transaction is kept, lock and all (never rolled back whole:
      // that freed the lock until the next check, and a second host could start meanwhile).
      if ((await keepAfterFailedCheck(sql)) || stopped()) return;
      // No lease transaction here (a connection postgres.js remade): take it back now. If Postgres is unreachable,
      // nobody else can take the lease meanwhile; checked again at the next tick.
      await retake(stopped).catch(() => undefined);
    }
  });
  watch.every(options.checkEveryMs ?? 5_000);
  return {
    async release() {
      // Not awaited: a check stuck on a dead connection ends with the session below, which releases the lock.
      void watch.stop();
      // Ended before the connection closes: through a pooler, the server connection goes back to it clean.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        simple(sql, "ROLLBACK").catch(() => undefined),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 1_000);
        }),
      ]);
      clearTimeout(timer);
      await sql.end({ timeout: 2 });
    },
  };
}

async function heldElsewhere(sql: Sql, remedy = nodeRemedy): Promise<EdgewiseError> {
  const [holder] = await sql<Array<{ name: string; addr: string | null; since: Date; schema: string }>>`
    SELECT a.application_name AS name, host(a.client_addr) AS addr, a.backend_start AS since,
           current_schema() AS schema
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ${LEASE_CLASS}
      AND l.objid = hashtext(current_schema())::oid AND l.objsubid = 2
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`.catch(() => []);
  const who = holder
    ? `${holder.name || "another client"}${holder.addr ? ` at ${holder.addr}` : ""}, since ${holder.since.toISOString()}`
    : "another node";
  return new EdgewiseError(
    "config.invalid",
    `another node hosts the actors of this database${holder ? ` (schema ${holder.schema})` : ""}: ${who}. ${remedy}`,
  );
}
