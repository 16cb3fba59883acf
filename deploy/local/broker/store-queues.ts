// Queue store: named FIFO queues with a parallelism, paused or not, and their lag.
import type { Sql } from "./db.ts";
import { cancelWhere } from "./store-messages.ts";

export interface QueueInfo {
  name: string;
  parallelism: number;
  paused: boolean;
  createdAt: number;
  updatedAt: number;
  /** Messages waiting in the queue, including those being delivered. */
  lag: number;
}

export async function upsertQueue(
  sql: Sql,
  name: string,
  parallelism: number,
  paused: boolean,
): Promise<void> {
  const now = Date.now();
  await sql`
    INSERT INTO qstash_queues (name, parallelism, paused, created_at, updated_at)
    VALUES (${name}, ${parallelism}, ${paused}, ${now}, ${now})
    ON CONFLICT (name) DO UPDATE SET parallelism = EXCLUDED.parallelism, paused = EXCLUDED.paused,
      updated_at = EXCLUDED.updated_at`;
}

export async function listQueues(sql: Sql, name?: string): Promise<QueueInfo[]> {
  const rows = await sql`
    SELECT q.name, q.parallelism, q.paused, q.created_at, q.updated_at,
      (SELECT count(*)::int FROM qstash_messages m WHERE m.queue_name = q.name) AS lag
    FROM qstash_queues q ${name === undefined ? sql`` : sql`WHERE q.name = ${name}`}
    ORDER BY q.name`;
  return rows.map((r) => ({
    name: r.name as string,
    parallelism: r.parallelism as number,
    paused: r.paused as boolean,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    lag: r.lag as number,
  }));
}

/** Pauses or resumes; false when there is no such queue. */
export async function setPaused(sql: Sql, name: string, paused: boolean): Promise<boolean> {
  const rows = await sql`
    UPDATE qstash_queues SET paused = ${paused}, updated_at = ${Date.now()} WHERE name = ${name} RETURNING name`;
  return rows.length > 0;
}

/** Deletes a queue and cancels the messages still in it; false when there is no such queue. */
export async function deleteQueue(sql: Sql, name: string): Promise<boolean> {
  return await sql.begin(async (tx) => {
    const rows = await tx`DELETE FROM qstash_queues WHERE name = ${name} RETURNING name`;
    if (rows.length === 0) return false;
    await cancelWhere(tx as unknown as Sql, tx`queue_name = ${name}`);
    return true;
  });
}
