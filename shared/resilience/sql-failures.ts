// Which Postgres errors count against its breaker: only the server saying it cannot serve; any other answer is it up.
import { EdgewiseError, isEdgewiseError } from "../errors/index.ts";
import { defaultIsFailure } from "./breaker-options.ts";

/**
 * SQLSTATE classes in which the server says it cannot serve: 08 connection exception, 28 invalid authorization and
 * 3D invalid catalog name (a connection refused: its role or database gone), 53 insufficient resources (disk full,
 * out of memory, too many connections), 57 operator intervention (a shutdown, a cancel, `statement_timeout`), 58
 * system error (I/O), F0 configuration file error, XX internal error (corruption).
 */
const unavailableClasses = new Set(["08", "28", "3D", "53", "57", "58", "F0", "XX"]);
/** And one code of another class: a read-only transaction (a standby after a failover) cannot take the writes. */
const unavailableCodes = new Set(["25006"]);

/**
 * An error the server sent (postgres.js's PostgresError, PGlite's DatabaseError): a SQLSTATE and a severity. A
 * driver's own error has neither (`CONNECTION_CLOSED`), or a code that only looks like one (`EPIPE`, `EPERM`).
 */
function sqlStateOf(error: unknown): string | undefined {
  const fields = error as { code?: unknown; severity?: unknown; severity_local?: unknown } | null;
  const code = fields?.code;
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return undefined;
  return typeof fields?.severity === "string" || typeof fields?.severity_local === "string"
    ? code
    : undefined;
}

/**
 * The `isFailure` of a breaker in front of Postgres: as the default, except that an error the server sent counts
 * only in the classes above. Any other is the server answering a statement, which proves it up: bad data (22), a
 * constraint (23), a trigger's refusal or its bug (09, P0, 2F, 38, 39), a permission (42), a lock or object state
 * (55), a limit (54), a serialization failure (40). So neither a caller's bad input nor a table refusing writes (an
 * audit record after a revocation, written through this breaker) can open it and fail every Postgres call.
 */
export function sqlIsFailure(error: unknown): boolean {
  const code = sqlStateOf(error);
  if (code !== undefined) return unavailableClasses.has(code.slice(0, 2)) || unavailableCodes.has(code);
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
