// Which Postgres errors count against its breaker: a refused query (bad data, a constraint) is the database answering.
import { EdgewiseError, isEdgewiseError } from "../errors/index.ts";
import { defaultIsFailure } from "./breaker-options.ts";

/**
 * SQLSTATE classes in which the server blames the statement, not itself: 21 cardinality, 22 data exception
 * (a value out of range), 23 integrity constraint (a CHECK, a unique key), 40 transaction rollback (a
 * serialization failure or deadlock, which the caller retries), 42 syntax or access rule, 44 WITH CHECK OPTION,
 * P0 a PL/pgSQL RAISE. Anything else (08 connection, 53 resources, 57 shutdown, 58 I/O, XX internal) counts.
 */
const statementClasses = new Set(["21", "22", "23", "40", "42", "44", "P0"]);

/**
 * The `isFailure` of a breaker in front of Postgres: as the default, except that an error carrying a SQLSTATE
 * of the classes above is the database answering, so a caller's bad input cannot open the breaker for everyone.
 */
export function sqlIsFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && statementClasses.has(code.slice(0, 2)))
    return false;
  return defaultIsFailure(error);
}

/**
 * A Postgres call's failure as a caller should see it: the database or its connection failing (what `sqlIsFailure`
 * counts: a reset, a refused connection, a server shutting down) is `unavailable`, a 503 to retry, as the billing
 * ledger already answers; a statement the database refused, and our own errors (`breaker.open`, `timeout`), pass
 * through. Without it a driver's `ECONNRESET` was a 500 `internal`, logged as a bug, for the calls that met the
 * outage before the breaker opened and for each half-open probe. The `postgres` dependency policy applies it to
 * every call (node and Worker alike: `mapError` in their policies).
 */
export function asPostgresFailure(error: unknown): unknown {
  if (isEdgewiseError(error) || !sqlIsFailure(error)) return error;
  return new EdgewiseError("unavailable", "Postgres is unavailable; retry", { cause: error });
}
