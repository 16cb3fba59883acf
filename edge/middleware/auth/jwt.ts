// JWT verification: HS256 with a shared secret, RS256/ES256 from a JWKS, each key with its own algorithms only.
import {
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import type { Config } from "../../../shared/config/index.ts";
import { timingSafeEqual } from "../../../shared/crypto/hmac.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { type ClaimsOutcome, principalFromClaims } from "./claims.ts";
import { type RemoteKeySetOptions, remoteKeySet } from "./jwks.ts";

export interface JwtOptions {
  /** HS256 key, at least 32 bytes (JWT_SECRET). */
  secret?: string | Uint8Array | undefined;
  /**
   * A second HS256 key still accepted during a rotation (JWT_PREVIOUS_SECRET): tokens signed with the secret being
   * replaced keep working until it is unset. Nothing is signed with it. Ignored without `secret`.
   */
  previousSecret?: string | Uint8Array | undefined;
  /** Where RS256/ES256 public keys are published (JWT_JWKS_URL); fetched by jose, cached, refetched on an unknown `kid`. */
  jwksUrl?: string | URL | undefined;
  /**
   * A key resolver used instead of `jwksUrl`: `remoteKeySet(url)` made once and shared by apps built per request
   * (each `jwksUrl` makes a key set, and a cache, of its own), or jose's `createLocalJWKSet` in tests.
   */
  jwks?: JWTVerifyGetKey | undefined;
  /**
   * Passed to `remoteKeySet` (jose's `createRemoteJWKSet`); defaults: cooldownDuration 30 s, cacheMaxAge 10 min,
   * timeoutDuration 5 s, and while the JWKS cannot be fetched, retryMs 1 s (doubling) and maxStaleMs 1 h.
   */
  jwksOptions?: RemoteKeySetOptions | undefined;
  /** Checked when set (JWT_ISSUER, JWT_AUDIENCE). */
  issuer?: string | undefined;
  audience?: string | string[] | undefined;
  /**
   * The longest a token may still be valid, in seconds (JWT_MAX_LIFETIME): one whose `exp` is further ahead than
   * this (plus the leeway) is refused, so a leaked long-lived token is not honoured. Unset: no limit.
   */
  maxLifetimeSeconds?: number | undefined;
  /** Leeway for `exp` and `nbf`, in seconds. */
  clockToleranceSeconds?: number | undefined;
  /** The time `exp`/`nbf` are checked against; default the system clock. */
  clock?: Clock | undefined;
  /** Verified tokens remembered, so a client's repeated token skips the signature check. 0 turns it off. */
  cacheEntries?: number | undefined;
}

/** The claim checks a node's or a Worker's configuration asks for: JWT_ISSUER, JWT_AUDIENCE, JWT_MAX_LIFETIME. */
export function jwtClaimChecks(
  config: Pick<Config, "JWT_ISSUER" | "JWT_AUDIENCE" | "JWT_MAX_LIFETIME">,
): Pick<JwtOptions, "issuer" | "audience" | "maxLifetimeSeconds"> {
  return {
    ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
    ...(config.JWT_MAX_LIFETIME ? { maxLifetimeSeconds: config.JWT_MAX_LIFETIME / 1000 } : {}),
  };
}

/**
 * A principal, or a public reason for refusing the token. It throws only `unavailable` (503), when the key
 * set cannot be fetched or parsed: then the token is not at fault.
 */
export type JwtVerifier = (token: string) => Promise<ClaimsOutcome>;

const hmacAlgorithms = ["HS256"];
const publicKeyAlgorithms = ["RS256", "ES256"];

/** Undefined when neither a secret nor a key set is configured: then no JWT is accepted. */
export function jwtVerifier(options: JwtOptions): JwtVerifier | undefined {
  const hmacKey = secretBytes(options.secret);
  if (hmacKey !== undefined && hmacKey.byteLength < 32) {
    throw new EdgewiseError("config.invalid", "the JWT secret must be at least 32 bytes");
  }
  const previousKey = hmacKey === undefined ? undefined : secretBytes(options.previousSecret);
  if (previousKey !== undefined && previousKey.byteLength < 32) {
    throw new EdgewiseError("config.invalid", "the previous JWT secret must be at least 32 bytes");
  }
  const remote =
    options.jwks ??
    (options.jwksUrl === undefined ? undefined : remoteKeySet(options.jwksUrl, options.jwksOptions));
  if (hmacKey === undefined && remote === undefined) return undefined;
  const keySet = remote === undefined ? undefined : guardKeySet(remote);
  const tolerance = options.clockToleranceSeconds ?? 5;
  const maxLifetime = options.maxLifetimeSeconds;
  if (maxLifetime !== undefined && !(maxLifetime > 0)) {
    throw new EdgewiseError("config.invalid", "the JWT maximum lifetime must be above 0 seconds");
  }
  const checks: JWTVerifyOptions = {
    requiredClaims: ["exp", "sub"],
    clockTolerance: tolerance,
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  };
  const clock = options.clock;
  const claims = (): JWTVerifyOptions => (clock ? { ...checks, currentDate: new Date(clock.now()) } : checks);
  const hmacCryptoKey = hmacKey === undefined ? undefined : importHmacKey(hmacKey);
  const previousCryptoKey = previousKey === undefined ? undefined : importHmacKey(previousKey);
  const cache = new VerifiedTokens(options.cacheEntries ?? 10_000, tolerance, clock ?? systemClock);
  /**
   * jose checks `iat` only against a maximum age; a token issued in the future (past the same tolerance as `nbf`)
   * is refused here too: its issuer's clock is wrong, or it was minted ahead of time. So is one valid for longer
   * than the maximum lifetime from now, whatever its `iat` says.
   */
  const accept = (token: string, payload: JWTPayload): ClaimsOutcome => {
    const now = Math.floor((clock?.now() ?? Date.now()) / 1000);
    if (typeof payload.iat === "number" && payload.iat > now + tolerance)
      return { reason: "issued in the future" };
    if (
      maxLifetime !== undefined &&
      typeof payload.exp === "number" &&
      payload.exp > now + maxLifetime + tolerance
    )
      return { reason: "exp too far ahead" };
    return cache.remember(token, payload, principalFromClaims(payload));
  };

  return async (token) => {
    const remembered = cache.get(token);
    if (remembered) return remembered;
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return { reason: "malformed" };
    }
    try {
      // The token's `alg` only picks which of our keys to try, and each key is tried with its own algorithms
      // alone: an HS256 token is never checked against a public key (algorithm confusion), nor `none` at all.
      if (alg === "HS256" && hmacCryptoKey !== undefined) {
        const hmacChecks = { ...claims(), algorithms: hmacAlgorithms };
        try {
          const { payload } = await jwtVerify(token, await hmacCryptoKey, hmacChecks);
          return accept(token, payload);
        } catch (error) {
          // During a rotation, a signature the current secret refuses may be the previous one's; any other
          // failure (expired, bad claims) is the token's whichever key signed it.
          if (previousCryptoKey === undefined || !(error instanceof errors.JWSSignatureVerificationFailed)) {
            throw error;
          }
          const { payload } = await jwtVerify(token, await previousCryptoKey, hmacChecks);
          return accept(token, payload);
        }
      }
      if (alg !== undefined && publicKeyAlgorithms.includes(alg) && keySet !== undefined) {
        const { payload } = await jwtVerify(token, keySet, { ...claims(), algorithms: publicKeyAlgorithms });
        return accept(token, payload);
      }
      return { reason: "algorithm not accepted" };
    } catch (error) {
      if (error instanceof KeySetUnavailable) {
        throw new EdgewiseError("unavailable", "the token signing keys could not be fetched", {
          cause: error,
        });
      }
      return { reason: reasonFor(error) };
    }
  };
}

class KeySetUnavailable extends Error {}

function secretBytes(secret: string | Uint8Array | undefined): Uint8Array | undefined {
  return typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
}

// jose would import a raw key again on every verification; a CryptoKey is imported once.
function importHmacKey(key: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
}

/**
 * Tokens whose signature and claims already checked out. Keyed by the signed part (header and payload), with the
 * signature compared in constant time: a lookup by the whole token would compare a caller's guess with a cached
 * token's signature in a string comparison that stops at the first difference. A change of one byte is a miss. A hit is re-checked against the clock (`exp`, `nbf`: wall time) and is kept at most a minute of
 * monotonic time, so a key removed from the JWKS stops being honoured within that, whatever the wall clock does (a
 * minute of wall time lasted an hour and a minute after a step back of an hour). Only successes are kept; a bounded
 * LRU.
 */
class VerifiedTokens {
  private readonly entries = new Map<
    string,
    /** `until` is monotonic; `exp` and `nbf` are wall time. */
    { signature: string; outcome: ClaimsOutcome; exp: number; nbf: number; until: number }
  >();

  constructor(
    private readonly capacity: number,
    private readonly toleranceSeconds: number,
    private readonly clock: Clock,
  ) {}

  get(token: string): ClaimsOutcome | undefined {
    const [signed, signature] = split(token);
    const entry = this.entries.get(signed);
    // Another signature of the same claims is verified as any token is; the entry stays for its own.
    if (!entry || !timingSafeEqual(signature, entry.signature)) return undefined;
    const now = this.clock.now();
    const tolerance = this.toleranceSeconds * 1000;
    if (
      this.clock.monotonic() >= entry.until ||
      now >= entry.exp + tolerance ||
      now < entry.nbf - tolerance
    ) {
      this.entries.delete(signed);
      return undefined;
    }
    this.entries.delete(signed);
    this.entries.set(signed, entry);
    return entry.outcome;
  }

  remember(token: string, payload: { exp?: number; nbf?: number }, outcome: ClaimsOutcome): ClaimsOutcome {
    if (this.capacity <= 0 || !("principal" in outcome) || payload.exp === undefined) return outcome;
    const [signed, signature] = split(token);
    this.entries.delete(signed);
    this.entries.set(signed, {
      signature,
      outcome,
      exp: payload.exp * 1000,
      nbf: (payload.nbf ?? 0) * 1000,
      until: this.clock.monotonic() + 60_000,
    });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return outcome;
  }
}

/** A compact JWS as its signed part (`header.payload`) and its signature. */
function split(token: string): [string, string] {
  const dot = token.lastIndexOf(".");
  return [token.slice(0, dot + 1), token.slice(dot + 1)];
}

/** Separates "no key for this token" (the token's fault) from "no key set at all" (ours). */
function guardKeySet(keySet: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await keySet(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
        throw error;
      }
      throw new KeySetUnavailable("JWKS unavailable", { cause: error });
    }
  };
}

/** A short public reason; jose's messages are not passed on, and nothing from the token is echoed. */
function reasonFor(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf" && error.reason === "check_failed") return "not yet valid";
    if (error.reason === "missing") return `missing ${error.claim}`;
    return `bad ${error.claim}`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return "bad signature";
  if (error instanceof errors.JOSEAlgNotAllowed) return "algorithm not accepted";
  if (error instanceof errors.JWKSNoMatchingKey) return "unknown key";
  if (error instanceof errors.JWKSMultipleMatchingKeys) return "ambiguous key";
  return "malformed";
}
