// Test support only: a connection that records the statements a read model runs, and what their plans read.
import postgres from "postgres";
import type { Sql } from "../../../deploy/local/broker/db.ts";
import { TEST_DATABASE_URL } from "./testing.ts";

interface PlanNode {
  "Node Type"?: string;
  "Relation Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  "Rows Removed by Index Recheck"?: number;
  Plans?: PlanNode[];
}

export interface PlanProbe {
  /** A pool of one connection on `sql`'s schema whose statements are recorded: give it to the store under test. */
  sql: postgres.Sql;
  /** Forgets the statements recorded so far. */
  reset(): void;
  /**
   * The rows of `table` that the plans of the recorded statements naming it read (returned, thrown away by a
   * filter or an index recheck, each loop counted), in all: each statement run again under EXPLAIN ANALYZE with its
   * own parameters; enable_seqscan left on. A bitmap heap scan counts the entries its bitmap index scans found when
   * they are more than the rows it read: two indexes ANDed may find many rows each and few together.
   */
  rowsRead(table: string): Promise<number>;
  end(): Promise<void>;
}

export async function planProbe(sql: Sql): Promise<PlanProbe> {
  const [row] = await sql<{ schema: string }[]>`SELECT current_schema() AS schema`;
  const statements: Array<{ query: string; parameters: unknown[] }> = [];
  const probe = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: row?.schema as string },
    debug: (_connection, query, parameters) => void statements.push({ query, parameters }),
  });
  return {
    sql: probe,
    reset: () => {
      statements.length = 0;
    },
    async rowsRead(table) {
      const listed = statements.filter((statement) => statement.query.includes(`FROM ${table}`));
      if (listed.length === 0) throw new Error(`no statement on ${table} was recorded`);
      let rows = 0;
      for (const statement of listed) {
        const [explained] = await probe.unsafe(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${statement.query}`,
          statement.parameters as postgres.ParameterOrJSON<never>[],
        );
        const plan = (explained?.["QUERY PLAN"] as Array<{ Plan: PlanNode }> | undefined)?.[0]?.Plan;
        if (!plan) throw new Error("EXPLAIN returned no plan");
        rows += read(plan, table);
      }
      return rows;
    },
    end: () => probe.end(),
  };
}

function read(node: PlanNode, table: string): number {
  const heap =
    node["Relation Name"] === table
      ? ((node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0)) * (node["Actual Loops"] ?? 1) +
        (node["Rows Removed by Index Recheck"] ?? 0)
      : 0;
  // A bitmap index scan names its index, not the table: its entries belong to the bitmap heap scan above it. One
  // index alone finds what the heap scan then reads, so the larger is counted, not both.
  const own =
    node["Relation Name"] === table && node["Node Type"] === "Bitmap Heap Scan"
      ? Math.max(heap, bitmapEntries(node))
      : heap;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + read(child, table), 0);
}

/** The index entries the bitmap index scans under a bitmap heap scan found (through BitmapAnd and BitmapOr). */
function bitmapEntries(node: PlanNode): number {
  return (node.Plans ?? []).reduce(
    (sum, child) =>
      sum +
      (child["Node Type"] === "Bitmap Index Scan"
        ? (child["Actual Rows"] ?? 0) * (child["Actual Loops"] ?? 1)
        : bitmapEntries(child)),
    0,
  );
}
