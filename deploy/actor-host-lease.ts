// One actor host per database: a node that hosts actors holds a Postgres advisory lock, so a second one cannot.
import { EdgewiseError } from "../shared/errors/index.ts";
import { connect, type Sql } from "./local/broker/db.ts";
import { PeriodicJob } from "./periodic-job.ts";

/**
 * Why: a node keeps its actors (stock, orders, points) in its own data dir, while billing, the read side and the
 * queue live in the shared Postgres. Two nodes on one DATABASE_URL (and schema) that both host actors would each
 * keep a copy of every actor: a sku restocked on one is still empty on the other, and the invariants of the order
 * saga no longer hold. More nodes run as gateways (`ACTOR_HOST_URL`) in front of one actor host.
 *
 * The lock is a session-level advisory lock on a connection of its own, so Postgres releases it the moment the
 * holder's process dies (no stale lease to expire). Fixed classid, arbitrary; the schema names the second key.
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
}

const held = (sql: Sql) => sql<Array<{ held: boolean }>>`
  SELECT count(*) > 0 AS held FROM pg_locks
  WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
    AND classid = ${LEASE_CLASS} AND objid = hashtext(current_schema())::oid AND objsubid = 2`;

const take = (sql: Sql) => sql<Array<{ taken: boolean }>>`
  SELECT pg_try_advisory_lock(${LEASE_CLASS}, hashtext(current_schema())) AS taken`;

/** Takes the lease, or throws `config.invalid` naming the node that holds it. */
export async function acquireActorHostLease(options: ActorHostLeaseOptions): Promise<ActorHostLease> {
  const sql = await connect({
    url: options.url,
    max: 1,
    schema: options.schema,
    applicationName: `edgewise actor host ${options.holder}`.slice(0, 63),
  });
  try {
    const [row] = await take(sql);
    if (!row?.taken) throw await heldElsewhere(sql);
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw error;
  }
  const watch: PeriodicJob = new PeriodicJob(async (stopped) => {
    try {
      const [still] = await held(sql);
      if (still?.held || stopped()) return;
      // A new session (the old one's connection broke): take the lock again, unless someone else has.
      const [row] = await take(sql);
      if (row?.taken || stopped()) return;
      const error = await heldElsewhere(sql);
      void watch.stop(); // not awaited: it waits for this very run
      options.onLost(error);
    } catch {
      // Postgres is unreachable: nobody else can take the lease meanwhile. Checked again at the next tick.
    }
  });
  watch.every(options.checkEveryMs ?? 5_000);
  return {
    async release() {
      // Not awaited: a check stuck on a dead connection ends with the session below, which releases the lock.
      void watch.stop();
      await sql.end({ timeout: 2 });
    },
  };
}

async function heldElsewhere(sql: Sql): Promise<EdgewiseError> {
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
    `another node hosts the actors of this database${holder ? ` (schema ${holder.schema})` : ""}: ${who}. ` +
      "Actors live in one node's data dir, so two would each keep their own copy. Stop the other node, or run " +
      "this one as a gateway in front of it (ACTOR_HOST_URL)",
  );
}
