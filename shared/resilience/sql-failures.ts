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
 * Refusals that say "not now": another transaction held what this one needed, and the server rolled this one back.
 * 40001 serialization failure, 40P01 deadlock detected (the server ended this side of a deadlock), 55P03 lock not
 * available (a wait past the role's or database's `lock_timeout`). The server is up and the same call may succeed at
 * once: a 503 `unavailable` with a short `Retry-After`, not counted against the breaker.
 */
const transientCodes = new Set(["40001", "40P01", "55P03"]);
/** Seconds a client is asked to wait after a transient refusal: locks are held for milliseconds to seconds. */
const transientRetryAfterSeconds = 1;
/**
 * Seconds a client is asked to wait after a call met Postgres failing while its breaker is still closed (a reset or
 * refused connection, a server shutting down): as long as a half-open breaker's rejection asks. A blip is over by
 * then; an outage that lasts opens the breaker, whose own 503 `breaker.open` then says how long it stays open.
 */
const outageRetryAfterSeconds = 1;

/** `error` with `Retry-After: seconds`, unless it already says how long to wait. */
function withRetryAfter(error: EdgewiseError, seconds: number): EdgewiseError {
  if (typeof error.meta?.retryAfterSeconds === "number") return error;
  return new EdgewiseError(error.code, error.message, {
    cause: error.cause,
    meta: { ...error.meta, retryAfterSeconds: seconds },
  });
}

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
 * The SQLSTATE the server answered with: the error's own, or, for an error of ours that wraps the server's answer
 * (the billing ledger's `unavailable`, a grant's record refused), its cause's.
 */
function answeredState(error: unknown): string | undefined {
  const own = sqlStateOf(error);
  if (own !== undefined || !isEdgewiseError(error)) return own;
  return sqlStateOf((error as { cause?: unknown }).cause);
}

/**
 * Whether `error` is the Postgres server's answer (it carries a SQLSTATE), or our error wrapping one: what a caller
 * that cannot tell a Postgres call's error from its own bug (the broker's one request handler) may hand to
 * `asPostgresFailure`, which takes any error it is given as a Postgres call's.
 */
export function answeredByPostgres(error: unknown): boolean {
  return answeredState(error) !== undefined;
}

/**
 * The driver's own codes for a connection to Postgres that was lost or never made: postgres.js's (`CONNECTION_CLOSED`
 * and its kin, `CONNECT_TIMEOUT`) and the socket's (a reset, a refusal, a timeout, no route). Only these: an error
 * with any other code, or none, may be a bug of the caller's.
 */
const connectionLostCodes = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/**
 * Whether `error` is the driver saying its connection to Postgres was lost or could not be made: what a caller that
 * cannot tell a Postgres call's error from its own bug (the broker's one request handler) may take for Postgres
 * being unavailable, as `asPostgresFailure` takes it (`sqlIsFailure` counts it).
 */
export function lostPostgresConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && sqlStateOf(error) === undefined && connectionLostCodes.has(code);
}

/**
 * Whether the server rolled a whole transaction back for a conflict with another one (40001 serialization failure,
 * 40P01 deadlock detected): none of it was applied, and run again at once it usually goes through, as Postgres's
 * manual advises. Not a wait past `lock_timeout` (55P03): that bound is the operator's, and a rerun would wait it out
 * again.
 */
export function rolledBackForConflict(error: unknown): boolean {
  const code = sqlStateOf(error);
  return code === "40001" || code === "40P01";
}

/**
 * The `isFailure` of a breaker in front of Postgres: as the default, except that an error the server sent counts
 * only in the classes above. Any other is the server answering a statement, which proves it up: bad data (22), a
 * constraint (23), a trigger's refusal or its bug (09, P0, 2F, 38, 39), a permission (42), a lock or object state
 * (55), a limit (54), a serialization failure or deadlock (40). So neither a caller's bad input nor a table refusing
 * writes (an audit record after a revocation, written through this breaker) nor another session holding a lock past
 * `lock_timeout` can open it and fail every Postgres call. Our own error wrapping the server's answer (the billing
 * ledger answers any database error as `unavailable`) is judged by that answer.
 */
export function sqlIsFailure(error: unknown): boolean {
  const code = answeredState(error);
  if (code !== undefined) return unavailableClasses.has(code.slice(0, 2)) || unavailableCodes.has(code);
  return defaultIsFailure(error);
}

/**
 * A Postgres call's failure as a caller should see it: the database or its connection failing (what `sqlIsFailure`
 * counts: a reset, a refused connection, a server shutting down) is `unavailable`, a 503 to retry, as the billing
 * ledger already answers, with `Retry-After: 1` (also on the ledger's own `unavailable` for one), as a breaker's
 * 503 has one; a transient refusal (a lock wait past `lock_timeout`, a deadlock, a serialization failure) is
 * `unavailable` too, with `Retry-After: 1`; a statement the database refused otherwise, and our own errors
 * (`breaker.open`, `timeout`), pass through. Without it a driver's `ECONNRESET`, or a revocation that met a locked
 * row, was a 500 `internal`, logged as a bug, for the calls that met it. The `postgres` dependency policy applies it
 * to every call (node and Worker alike: `mapError` in their policies).
 */
export function asPostgresFailure(error: unknown): unknown {
  const transient = transientCodes.has(answeredState(error) ?? "");
  if (isEdgewiseError(error)) {
    if (error.code !== "unavailable" || !(error instanceof EdgewiseError)) return error;
    if (transient) return withRetryAfter(error, transientRetryAfterSeconds);
    return sqlIsFailure(error) ? withRetryAfter(error, outageRetryAfterSeconds) : error;
  }
  if (transient) {
    return new EdgewiseError(
      "unavailable",
      "Postgres refused for now (a lock or a conflict with another transaction); retry",
      {
        cause: error,
        meta: { retryAfterSeconds: transientRetryAfterSeconds },
      },
    );
  }
  if (!sqlIsFailure(error)) return error;
  return new EdgewiseError("unavailable", "Postgres is unavailable; retry", {
    cause: error,
    meta: { retryAfterSeconds: outageRetryAfterSeconds },
  });
}
