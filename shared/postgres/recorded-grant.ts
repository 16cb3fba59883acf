// The last steps of a grant's transaction: its audit record (where there is an activity log), then the caller's deadline, before COMMIT.
import type postgres from "postgres";
import { EdgewiseError } from "../errors/index.ts";

/**
 * Writes `granted`'s record on `tx` (the grant's own transaction) when there is one to write, then checks the
 * caller's `signal`, as the last steps before COMMIT. A record that fails rolls the grant back (503 `unavailable`:
 * retry); a caller answered 504 meanwhile (a lock wait outlasted its deadline) must not find the grant made after
 * all, nor a warn line saying it was rolled back while it stands (504 `timeout`). Without `record` (a node without
 * an activity log) the deadline holds all the same, so the grant is made in a transaction either way. `what` names
 * the grant: "the API key", "the subscription".
 */
export async function recordGrant<T, Types extends Record<string, unknown>>(
  tx: postgres.TransactionSql<Types>,
  granted: T,
  record: ((tx: postgres.TransactionSql, granted: T) => Promise<unknown>) | undefined,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  try {
    await record?.(tx as unknown as postgres.TransactionSql, granted);
  } catch (error) {
    throw new EdgewiseError(
      "unavailable",
      `the change could not be recorded, so ${what} was not created; retry`,
      {
        cause: error,
      },
    );
  }
  if (signal?.aborted) {
    throw new EdgewiseError("timeout", `the caller stopped waiting: ${what} is not created`, {
      cause: signal.reason,
    });
  }
  return granted;
}
