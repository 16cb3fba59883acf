// Authentication: a Bearer JWT or an X-API-Key becomes `c.var.principal`; no credentials leaves it undefined.
import type { Context, MiddlewareHandler } from "hono";
import { EdgewiseError, isEdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";
import type { ApiKeyVerifier } from "./api-keys.ts";
import { bearerChallenge, invalidTokenChallenge } from "./challenge.ts";
import { type JwtOptions, jwtVerifier } from "./jwt.ts";
import type { Principal } from "./principal.ts";

export interface AuthOptions extends JwtOptions {
  /** Checks `X-API-Key`; without it, API keys are refused. Use `cachedApiKeyVerifier(store)`. */
  apiKeys?: ApiKeyVerifier | undefined;
  /** Longer credentials are refused before any parsing or lookup. */
  maxCredentialLength?: number;
  /** Told of each refused credential, before the 401 (security events). Must return at once and not throw. */
  onRefused?: (refusal: AuthRefusal, c: Context<GatewayEnv>) => void;
  /**
   * Charges refused credentials to the caller's address (the rate limiter's `refusals`): `charge` runs after a
   * credential is refused, and `check` before an API key is looked up; either throws 429 once the address is
   * over budget.
   */
  refusals?: {
    check(c: Context<GatewayEnv>): void;
    charge(c: Context<GatewayEnv>): Promise<void>;
  };
}

/** A refused credential, as far as it may be told: the public reason and the scheme, never the credential. */
export interface AuthRefusal {
  reason: string;
  scheme: "bearer" | "api-key" | "other";
}

const defaults = { clockToleranceSeconds: 5, maxCredentialLength: 8192 };

/** Why a credential was refused: the public reason and the challenge to send with the 401. */
interface Refusal {
  reason: string;
  challenge: string;
}

/**
 * The token of `Bearer <token>` (the scheme in any case, spaces around the token), or undefined for another
 * scheme or a token with whitespace inside. Parsed by hand in one pass: the regex it replaces,
 * `/^Bearer +(\S*) *$/i`, backtracked quadratically on a header of many spaces (220 ms of CPU for 16 KB).
 */
export function bearerToken(header: string): string | undefined {
  if (header.length < 7 || header.slice(0, 7).toLowerCase() !== "bearer ") return undefined;
  let start = 7;
  let end = header.length;
  while (start < end && header.charCodeAt(start) === 32) start++;
  while (end > start && header.charCodeAt(end - 1) === 32) end--;
  const token = header.slice(start, end);
  return /\s/.test(token) ? undefined : token;
}

/**
 * Sets `principal` for the routes, which decide with `requireScope`. Credentials that are present but wrong
 * get 401 here, even on routes that need none, so a client learns its token is bad. Tokens and keys are
 * never logged nor echoed: a refusal carries a short reason only.
 */
export function auth(options: AuthOptions = {}): MiddlewareHandler<GatewayEnv> {
  const settings = { ...defaults, ...options };
  const verifyJwt = jwtVerifier(settings);
  const apiKeys = settings.apiKeys;
  const tooLong = (credential: string) => credential.length > settings.maxCredentialLength;

  async function fromAuthorization(header: string): Promise<Principal | Refusal> {
    const token = bearerToken(header);
    if (token === undefined)
      return { reason: "unsupported authorization scheme", challenge: bearerChallenge };
    if (token === "" || tooLong(token))
      return { reason: "invalid token: malformed", challenge: invalidTokenChallenge };
    if (!verifyJwt)
      return { reason: "invalid token: JWTs are not accepted", challenge: invalidTokenChallenge };
    const outcome = await verifyJwt(token);
    return "principal" in outcome
      ? outcome.principal
      : { reason: `invalid token: ${outcome.reason}`, challenge: invalidTokenChallenge };
  }

  async function fromApiKey(key: string): Promise<Principal | Refusal> {
    const refused = { reason: "invalid API key", challenge: invalidTokenChallenge };
    if (!apiKeys || tooLong(key)) return refused;
    const principal = await apiKeys.verify(key).catch((error: unknown) => {
      if (isEdgewiseError(error)) throw error;
      throw new EdgewiseError("unavailable", "API keys cannot be checked right now", { cause: error });
    });
    return principal ?? refused;
  }

  return async function auth(c, next) {
    const authorization = c.req.header("authorization");
    const apiKey = c.req.header("x-api-key");
    if (authorization !== undefined && apiKey !== undefined) {
      throw new EdgewiseError("request.invalid", "send one credential, Authorization or X-API-Key, not both");
    }
    // Only an API key costs a lookup in the key store; a JWT is checked in memory, so a good one is never held up.
    if (apiKey !== undefined) settings.refusals?.check(c);
    const result =
      authorization !== undefined
        ? await fromAuthorization(authorization)
        : apiKey !== undefined
          ? await fromApiKey(apiKey)
          : undefined;
    if (result === undefined) {
      c.set("principal", undefined);
      return next();
    }
    if ("reason" in result) {
      settings.onRefused?.(
        { reason: result.reason, scheme: apiKey !== undefined ? "api-key" : schemeOf(authorization) },
        c,
      );
      await settings.refusals?.charge(c);
      // Set on the context, so it survives into the error handler's `c.body()` answer.
      c.header("WWW-Authenticate", result.challenge);
      throw new EdgewiseError("unauthorized", result.reason);
    }
    c.set("principal", result);
    return next();
  };
}

const schemeOf = (authorization: string | undefined): AuthRefusal["scheme"] =>
  authorization !== undefined && /^bearer\b/i.test(authorization) ? "bearer" : "other";

export { withAuthChallenge } from "./challenge.ts";
export type { ApiKeyVerifier } from "./api-keys.ts";
