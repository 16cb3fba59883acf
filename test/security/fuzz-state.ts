// The fuzzer's view of a node's state: a cheap fingerprint of Postgres and the actor store, and a wait for quiescence.
import { Database } from "bun:sqlite";
import { join } from "node:path";
import type { CommerceNode } from "../commerce/bun-node.ts";

/**
 * Rows that change without any request asking for it, by design, and so are not state a request may change:
 * security events (a refused request is recorded, rate-limited, after the response) in the activity log, and console
 * sign-ins (a GET with an admin `?token=` opens a session, and its record is the audit's point).
 */
const excluded: Record<string, string> = {
  activity_log: "WHERE x.type NOT LIKE 'security.%' AND x.type <> 'admin.console_signed_in'",
};

export interface Snapshot {
  /** Per part (`pg:<table>`, `actors:<table>`): row count and an order-independent hash of the rows. */
  parts: Record<string, string>;
  /** Nothing is queued anywhere: broker messages, billing's outbox, actor outboxes, actor mailboxes. */
  idle: boolean;
  /** The broker's count of deliveries answered 2xx (a hint: work moved between two reads). */
  delivered: number;
  /** Delivery attempts the broker logged as failed (ERROR, RETRY, FAILED), but for destinations the test expects. */
  failedDeliveries: number;
  at: number;
}

export const sameState = (a: Snapshot, b: Snapshot) => changedParts(a, b).length === 0;

export function changedParts(a: Snapshot, b: Snapshot): string[] {
  const names = new Set([...Object.keys(a.parts), ...Object.keys(b.parts)]);
  return [...names].filter((name) => a.parts[name] !== b.parts[name]).sort();
}

export function describeChange(a: Snapshot, b: Snapshot): string {
  return changedParts(a, b)
    .map((name) => `${name}: ${a.parts[name] ?? "-"} → ${b.parts[name] ?? "-"}`)
    .join("; ");
}

/**
 * Every table in the node's Postgres schema (found at start, so a table added later is covered) and every table of
 * its actor store. Postgres: `count(*)` and the sum of hashes of each row version's `ctid` and `xmin`, so an
 * insert, update or delete changes it and a rolled-back one does not; one round trip for all tables. SQLite: the
 * rows of actor_state, timers and kv hashed here; inbox and outbox by count and high-water mark (rows are only
 * appended there, or deleted once sent).
 */
export class StateProbe {
  private readonly actors: Database;
  private pgQuery = "";
  /** Where the fuzzer's time goes: snapshots taken, and waits for quiescence. */
  readonly stats = { snapshots: 0, snapshotMs: 0, settles: 0, settleMs: 0 };

  private knownFailures = 0;

  /** `expectFailuresTo`: URL suffixes whose deliveries fail on purpose (a dead-letter fixture). */
  constructor(
    private readonly running: CommerceNode,
    private readonly expectFailuresTo: string[] = [],
  ) {
    this.actors = new Database(join(running.dataDir, "actors.db"), { readonly: true });
  }

  private get failureFilter(): string {
    const expected = this.expectFailuresTo.map(
      (suffix) => ` AND url NOT LIKE '%${suffix.replaceAll("'", "''")}'`,
    );
    return `state IN ('ERROR', 'RETRY', 'FAILED')${expected.join("")}`;
  }

  async init(): Promise<string[]> {
    const sql = this.running.node.sql;
    const tables = (
      await sql<Array<{ table_name: string }>>`
        SELECT table_name FROM information_schema.tables
        WHERE table_schema = ${this.running.schema} AND table_type = 'BASE TABLE' ORDER BY 1`
    ).map((row) => row.table_name);
    if (tables.length === 0) throw new Error("fuzz: the node's schema has no tables");
    this.pgQuery = tables
      .map(
        (table) =>
          `SELECT '${table}' AS t, count(*)::text AS n, coalesce(sum(hashtextextended(x.ctid::text || x.xmin::text, 0)), 0)::text AS h FROM "${table}" x ${excluded[table] ?? ""}`,
      )
      .join(" UNION ALL ");
    this.pgQuery += ` UNION ALL SELECT '~failed' AS t, count(*)::text AS n, '' AS h FROM qstash_events WHERE ${this.failureFilter}`;
    this.knownFailures = (await this.snapshot()).failedDeliveries;
    return tables;
  }

  async snapshot(): Promise<Snapshot> {
    const started = performance.now();
    try {
      return await this.read();
    } finally {
      this.stats.snapshots++;
      this.stats.snapshotMs += performance.now() - started;
    }
  }

  private async read(): Promise<Snapshot> {
    const { node } = this.running;
    const host = node.host;
    if (!host) throw new Error("fuzz: the node has no local actor host");
    const parts: Record<string, string> = {};
    const rows = await node.sql.unsafe<Array<{ t: string; n: string; h: string }>>(this.pgQuery);
    let failedDeliveries = 0;
    for (const row of rows) {
      if (row.t === "~failed") failedDeliveries = Number(row.n);
      else parts[`pg:${row.t}`] = `${row.n}/${row.h}`;
    }

    const hashRows = (query: string) => {
      const all = this.actors.query(query).values();
      return `${all.length}/${Bun.hash(JSON.stringify(all)).toString(36)}`;
    };
    parts["actors:actor_state"] = hashRows("SELECT actor, version, state FROM actor_state ORDER BY actor");
    parts["actors:timers"] = hashRows(
      "SELECT actor, id, at, envelope, attempts FROM timers ORDER BY actor, id",
    );
    parts["actors:kv"] = hashRows("SELECT actor, key, value FROM kv ORDER BY actor, key");
    const inbox = this.actors.query("SELECT count(*) AS n, coalesce(max(at), 0) AS m FROM inbox").get() as {
      n: number;
      m: number;
    };
    parts["actors:inbox"] = `${inbox.n}/${inbox.m}`;
    const outbox = this.actors
      .query("SELECT count(*) AS n, coalesce(max(seq), 0) AS m, coalesce(sum(attempts), 0) AS a FROM outbox")
      .get() as { n: number; m: number; a: number };
    parts["actors:outbox"] = `${outbox.n}/${outbox.m}/${outbox.a}`;

    const count = (name: string) => Number((parts[name] ?? "0/").split("/")[0]);
    const idle =
      count("pg:qstash_messages") === 0 &&
      count("pg:billing_outbox") === 0 &&
      outbox.n === 0 &&
      host.outboxBacklog().pending === 0 &&
      host.stats().mailboxDepth === 0;
    return { parts, idle, delivered: node.broker?.delivered() ?? 0, failedDeliveries, at: performance.now() };
  }

  /**
   * Waits until the system is quiescent: two snapshots at least `gapMs` apart, both idle, with the same state and
   * no delivery in between. Work always sits in a durable place while it moves (outbox → broker → a commit that
   * writes the next outbox row before the broker's row goes), so a hop between two reads changes the state or the
   * delivery count, and the wait goes on. A delivery failing inside the system (the broker logs a retry or a dead
   * letter) ends the wait with an error: an accepted request must not set off a 4xx or 5xx further down.
   */
  async settle(timeoutMs = 20_000, gapMs = 8): Promise<Snapshot> {
    const started = performance.now();
    try {
      return await this.quiescent(timeoutMs, gapMs);
    } finally {
      this.stats.settles++;
      this.stats.settleMs += performance.now() - started;
    }
  }

  private async quiescent(timeoutMs: number, gapMs: number): Promise<Snapshot> {
    const deadline = performance.now() + timeoutMs;
    let previous = await this.snapshot();
    for (;;) {
      if (previous.failedDeliveries > this.knownFailures) {
        this.knownFailures = previous.failedDeliveries;
        throw new Error(`a delivery failed inside the system: ${await this.failures()}`);
      }
      await Bun.sleep(previous.idle ? gapMs : 25);
      const current = await this.snapshot();
      if (
        previous.idle &&
        current.idle &&
        previous.delivered === current.delivered &&
        sameState(previous, current)
      ) {
        return current;
      }
      if (performance.now() > deadline) {
        throw new Error(`fuzz: the node did not settle in ${timeoutMs} ms: ${await this.backlog()}`);
      }
      previous = current;
    }
  }

  /** The latest failed delivery attempts: where to, the answer, the broker's note. */
  async failures(): Promise<string> {
    const rows = await this.running.node.sql.unsafe<Array<Record<string, unknown>>>(
      `SELECT regexp_replace(url, '^https?://[^/]+', '') AS path, state, response_status AS status, error
       FROM qstash_events WHERE ${this.failureFilter} ORDER BY id DESC LIMIT 3`,
    );
    return JSON.stringify(rows);
  }

  /** What is still queued, for a settle that timed out. */
  async backlog(): Promise<string> {
    const sql = this.running.node.sql;
    const messages = await sql<
      Array<{ url: string; attempts: number; last_status: number | null; last_error: string | null }>
    >`
      SELECT url, attempts, last_status, last_error FROM qstash_messages ORDER BY seq LIMIT 5`;
    const host = this.running.node.host;
    return JSON.stringify({
      broker: messages,
      actorOutbox: host?.outboxBacklog(),
      mailboxes: host?.stats().mailboxDepth,
    });
  }

  close(): void {
    this.actors.close();
  }
}
