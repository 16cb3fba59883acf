// The remote key set (JWT_JWKS_URL): jose's cached createRemoteJWKSet, kept usable while the identity provider is down.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type ExportedJWKSCache,
  errors,
  type JSONWebKeySet,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
  jwksCache,
  type RemoteJWKSetOptions,
} from "jose";
import { type Clock, systemClock } from "../../../shared/clock/index.ts";

/** jose's options (defaults: cooldownDuration 30 s, cacheMaxAge 10 min, timeoutDuration 5 s), and two of ours. */
export interface RemoteKeySetOptions extends RemoteJWKSetOptions {
  /**
   * While the key set cannot be fetched, the last one fetched is used until it is this old (ms since that
   * fetch). Default 1 h. It bounds how long a key the provider has withdrawn can outlive an outage.
   */
  maxStaleMs?: number | undefined;
  /** After a failed fetch, the next waits this long, doubling per failure up to `cooldownDuration`. Default 1 s. */
  retryMs?: number | undefined;
  /**
   * Told of each failed fetch (once per round, however many requests shared it), e.g. to log it: while the last set
   * answers, nothing else shows the outage. Must not throw.
   */
  report?: ((error: unknown) => void) | undefined;
  /** Only its monotonic time is read: every age and backoff here is measured in it. Default `systemClock`. */
  clock?: Clock | undefined;
}

const defaults = {
  cooldownDuration: 30_000,
  cacheMaxAge: 600_000,
  timeoutDuration: 5_000,
  maxStaleMs: 3_600_000,
  retryMs: 1_000,
};

/** The key set could not be fetched and no usable copy is at hand: the token is not at fault. */
class JwksUnavailable extends Error {
  override readonly name = "JwksUnavailable";
}

/**
 * jose caches the set and refetches it on an unknown `kid` at most once per `cooldownDuration`, but once the set is
 * older than `cacheMaxAge` it refetches before every verification and throws when that fails: an outage of the
 * provider turned every token into a 503 though its keys were in memory, and every request fetched again. Here a
 * failed fetch is retried once per backoff (one request probes; the others meanwhile use the last set, or get 503
 * at once without one), and the last set keeps answering for `maxStaleMs`. A `kid` that set lacks is 503 during
 * an outage, never a fetch: a newly rotated key and a forged one look the same then.
 */
export function remoteKeySet(url: string | URL, options: RemoteKeySetOptions = {}): JWTVerifyGetKey {
  const { maxStaleMs, retryMs, report, clock: givenClock, ...given } = options;
  const clock = givenClock ?? systemClock;
  // `??`, not a spread: an option given as undefined takes its default too.
  const staleMs = maxStaleMs ?? defaults.maxStaleMs;
  const firstRetryMs = retryMs ?? defaults.retryMs;
  const joseOptions = {
    ...given,
    cooldownDuration: given.cooldownDuration ?? defaults.cooldownDuration,
    cacheMaxAge: given.cacheMaxAge ?? defaults.cacheMaxAge,
    timeoutDuration: given.timeoutDuration ?? defaults.timeoutDuration,
  };
  const maxRetryMs = Math.max(firstRetryMs, joseOptions.cooldownDuration);
  // jose writes each set it fetches, and when, into this object.
  const fetched: JWKSCacheInput = {};
  const remote = createRemoteJWKSet(new URL(url), { ...joseOptions, [jwksCache]: fetched });
  /** The last set jose fetched, and when (monotonic) it was first seen here, right after the call that fetched it. */
  let seen: { jwks: JSONWebKeySet; at: number } | undefined;
  let last: { jwks: JSONWebKeySet; at: number; keys: JWTVerifyGetKey } | undefined;
  /** Failed rounds in a row; 0 while the provider answers. */
  let failures = 0;
  let retryAt = 0;

  const backoff = (failed: number) => Math.min(maxRetryMs, firstRetryMs * 2 ** (failed - 1));

  function noteFetch(): void {
    const { jwks } = fetched as Partial<ExportedJWKSCache>;
    if (jwks !== undefined && jwks !== seen?.jwks) seen = { jwks, at: clock.monotonic() };
  }

  function lastSet(): typeof last {
    noteFetch();
    if (seen !== undefined && seen.jwks !== last?.jwks) {
      last = { ...seen, keys: createLocalJWKSet(seen.jwks) };
    }
    return last;
  }

  /**
   * jose ages its set, and its cooldown for an unknown `kid`, in wall time (`Date.now()`): after the wall clock was
   * stepped back an hour, it kept a set for the hour and ten minutes (a key the provider withdrew still verified)
   * and refused a newly rotated-in key for the hour. Both are measured here in monotonic time too, and the set is
   * reloaded when jose would have reloaded it but for the step.
   */
  const resolveKey: JWTVerifyGetKey = async (...args) => {
    const age = () => {
      noteFetch(); // a fetch jose made itself meanwhile restarts the age
      return seen === undefined ? 0 : clock.monotonic() - seen.at;
    };
    try {
      if (remote.fresh && age() >= joseOptions.cacheMaxAge) await remote.reload();
      try {
        return await remote(...args);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey && remote.coolingDown)) throw error;
        if (age() < joseOptions.cooldownDuration) throw error;
        await remote.reload();
        return await remote(...args);
      }
    } finally {
      noteFetch();
    }
  };

  const fromLastSet: JWTVerifyGetKey = async (...args) => {
    const set = lastSet();
    if (set === undefined || clock.monotonic() - set.at >= staleMs) {
      throw new JwksUnavailable("the JWKS cannot be fetched and no recent copy is at hand");
    }
    try {
      return await set.keys(...args);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) {
        throw new JwksUnavailable("the JWKS cannot be fetched to look for this kid", { cause: error });
      }
      throw error;
    }
  };

  return async (...args) => {
    const now = clock.monotonic();
    const probing = failures > 0;
    if (probing) {
      if (now < retryAt) return fromLastSet(...args);
      // This request probes; until it settles (or its backoff passes, should it never settle), others do not.
      failures++;
      retryAt = now + backoff(failures);
    }
    try {
      const key = await resolveKey(...args);
      failures = 0;
      return key;
    } catch (error) {
      // No key for this token in a set jose holds as current: the token's fault, and the provider answered.
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
        failures = 0;
        throw error;
      }
      // Counted once per round: requests that shared the failed fetch do not lengthen the backoff.
      if (failures === 0) {
        failures = 1;
        retryAt = clock.monotonic() + backoff(1);
        report?.(error);
      } else if (probing) {
        report?.(error);
      }
      return fromLastSet(...args);
    }
  };
}
