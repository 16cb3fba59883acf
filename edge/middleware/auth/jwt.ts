// JWT verification: HS256 with a shared secret, RS256/ES256 from a JWKS, each key with its own algorithms only.
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
  type RemoteJWKSetOptions,
} from "jose";
import type { Clock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { type ClaimsOutcome, principalFromClaims } from "./claims.ts";

export interface JwtOptions {
  /** HS256 key, at least 32 bytes (JWT_SECRET). */
  secret?: string | Uint8Array | undefined;
  /** Where RS256/ES256 public keys are published (JWT_JWKS_URL); fetched by jose, cached, refetched on an unknown `kid`. */
  jwksUrl?: string | URL | undefined;
  /** A key resolver used instead of `jwksUrl`, e.g. jose's `createLocalJWKSet` in tests. */
  jwks?: JWTVerifyGetKey | undefined;
  /** Passed to `createRemoteJWKSet`; defaults: cooldownDuration 30 s, cacheMaxAge 10 min, timeoutDuration 5 s. */
  jwksOptions?: RemoteJWKSetOptions | undefined;
  /** Checked when set (JWT_ISSUER, JWT_AUDIENCE). */
  issuer?: string | undefined;
  audience?: string | string[] | undefined;
  /** Leeway for `exp` and `nbf`, in seconds. */
  clockToleranceSeconds?: number | undefined;
  /** The time `exp`/`nbf` are checked against; default the system clock. */
  clock?: Clock | undefined;
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
  const hmacKey =
    typeof options.secret === "string" ? new TextEncoder().encode(options.secret) : options.secret;
  if (hmacKey !== undefined && hmacKey.byteLength < 32) {
    throw new EdgewiseError("config.invalid", "the JWT secret must be at least 32 bytes");
  }
  const remote =
    options.jwks ??
    (options.jwksUrl === undefined
      ? undefined
      : createRemoteJWKSet(new URL(options.jwksUrl), {
          cooldownDuration: 30_000,
          cacheMaxAge: 600_000,
          timeoutDuration: 5_000,
          ...options.jwksOptions,
        }));
  if (hmacKey === undefined && remote === undefined) return undefined;
  const keySet = remote === undefined ? undefined : guardKeySet(remote);
  const checks: JWTVerifyOptions = {
    requiredClaims: ["exp", "sub"],
    clockTolerance: options.clockToleranceSeconds ?? 5,
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  };
  const clock = options.clock;
  const claims = (): JWTVerifyOptions => (clock ? { ...checks, currentDate: new Date(clock.now()) } : checks);

  return async (token) => {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return { reason: "malformed" };
    }
    try {
      // The token's `alg` only picks which of our keys to try, and each key is tried with its own algorithms
      // alone: an HS256 token is never checked against a public key (algorithm confusion), nor `none` at all.
      if (alg === "HS256" && hmacKey !== undefined) {
        const { payload } = await jwtVerify(token, hmacKey, { ...claims(), algorithms: hmacAlgorithms });
        return principalFromClaims(payload);
      }
      if (alg !== undefined && publicKeyAlgorithms.includes(alg) && keySet !== undefined) {
        const { payload } = await jwtVerify(token, keySet, { ...claims(), algorithms: publicKeyAlgorithms });
        return principalFromClaims(payload);
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
