// Console sessions that need no server memory (Workers, whose isolates share none): the cookie is the session, sealed.
//
// The cookie is a compact JWS (jose, already the gateway's JWT library, rather than a hand-rolled format): the
// admin's `sub` and scopes, `exp` (the session's end: its TTL or the sign-in token's `exp`, whichever is first) and
// the session's CSRF token, HS256 under a key derived from the server secret with a label of its own. So an API JWT
// is never a console cookie nor the reverse (other key, and `typ`/`aud` are checked), and any isolate that knows the
// secret opens the console for it. What it cannot do, unlike the node's sessions: sign-out only clears the browser's
// cookie, so a copy taken before keeps working until its `exp`; rotating the secret ends every session (SECURITY.md),
// unless the secret being replaced is kept as `previousSecret`: cookies it sealed then last until their `exp`.
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { jwtVerify, SignJWT } from "jose";
import type { Config } from "../../shared/config/index.ts";
import { randomHex } from "../../shared/crypto/hex.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../env.ts";
import { type JwtOptions, jwtVerifier } from "../middleware/auth/jwt.ts";
import { hasScope } from "../middleware/auth/principal.ts";
import {
  bearerSession,
  type ConsoleSessions,
  checkConsoleToken,
  clearSessionCookie,
  type Session,
  sessionCookie,
  setSessionCookie,
} from "./session.ts";

export interface SignedSessionOptions {
  /** The server secret the cookie's key is derived from (JWT_SECRET, or a dedicated one); at least 32 bytes. */
  secret: string;
  /**
   * During a rotation: the secret being replaced. Cookies sealed under its key still open the console until their
   * `exp` (8 hours at most); new ones are sealed under `secret`'s.
   */
  previousSecret?: string | undefined;
  /** How long a session lasts at most, in ms (never past its token's `exp`). Default 8 h. */
  ttlMs?: number;
}

/**
 * The secrets a Worker's console cookies are sealed with: CONSOLE_SESSION_SECRET, else JWT_SECRET; and during a
 * rotation of the one in use, the one being replaced (CONSOLE_SESSION_PREVIOUS_SECRET, or JWT_PREVIOUS_SECRET when
 * the key comes from JWT_SECRET). Undefined when there is none: only a Bearer admin opens the console.
 */
export function consoleSessionSecrets(
  config: Pick<
    Config,
    "CONSOLE_SESSION_SECRET" | "CONSOLE_SESSION_PREVIOUS_SECRET" | "JWT_SECRET" | "JWT_PREVIOUS_SECRET"
  >,
): Pick<SignedSessionOptions, "secret" | "previousSecret"> | undefined {
  if (config.CONSOLE_SESSION_SECRET)
    return { secret: config.CONSOLE_SESSION_SECRET, previousSecret: config.CONSOLE_SESSION_PREVIOUS_SECRET };
  if (config.JWT_SECRET) return { secret: config.JWT_SECRET, previousSecret: config.JWT_PREVIOUS_SECRET };
  return undefined;
}

const audience = "edgewise-console";
const type = "edgewise-console-session+jwt";
/** The label the cookie key is derived under: a key of its own, never the secret that signs API tokens. */
const label = "edgewise console session key v1";

/** HMAC-SHA256(secret, label): a 256-bit key for this purpose only (HKDF's extract step, with the label as salt). */
async function deriveKey(secret: string): Promise<Uint8Array> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(label)));
}

export function signedConsoleSessions(
  jwt: JwtOptions | undefined,
  options: SignedSessionOptions,
): ConsoleSessions {
  for (const given of [options.secret, options.previousSecret]) {
    if (given !== undefined && new TextEncoder().encode(given).byteLength < 32) {
      throw new EdgewiseError("config.invalid", "the console session secret must be at least 32 bytes");
    }
  }
  const verify = jwt ? jwtVerifier(jwt) : undefined;
  const ttlMs = options.ttlMs ?? 8 * 3600_000;
  const key = deriveKey(options.secret);
  // Only read with: nothing is sealed under the secret being replaced.
  const keys = options.previousSecret ? [key, deriveKey(options.previousSecret)] : [key];

  /** The cookie's claims under the first key that verifies it (each failure alike: no session). */
  const opened = async (cookie: string) => {
    for (const candidate of keys) {
      try {
        return await jwtVerify(cookie, await candidate, {
          algorithms: ["HS256"],
          audience,
          typ: type,
          requiredClaims: ["exp", "sub"],
          clockTolerance: 0,
        });
      } catch {
        // Forged, altered, expired, or sealed under another secret: the next key, or no session.
      }
    }
    return undefined;
  };

  const read = async (cookie: string): Promise<Session | undefined> => {
    // A cookie longer than any this code issues is not parsed (the gateway's credential bound).
    if (cookie.length > 4096) return undefined;
    const verified = await opened(cookie);
    if (!verified) return undefined;
    const { payload } = verified;
    const scopes = typeof payload.scope === "string" ? payload.scope.split(" ") : [];
    const csrf = typeof payload.csrf === "string" ? payload.csrf : "";
    const principal = { sub: payload.sub as string, scopes: new Set(scopes), via: "jwt" as const };
    if (!hasScope(principal, "admin") || !/^[0-9a-f]{64}$/.test(csrf)) return undefined;
    return { kind: "admin", principal, via: "cookie", csrf, expiresAt: (payload.exp as number) * 1000 };
  };

  return {
    async resolve(c: Context<GatewayEnv>) {
      const bearer = bearerSession(c);
      if (bearer) return bearer;
      const cookie = getCookie(c, sessionCookie);
      if (cookie === undefined) return { kind: "anonymous" };
      const session = await read(cookie);
      if (session) return session;
      clearSessionCookie(c);
      return { kind: "ended" };
    },
    async login(c, token) {
      const checked = await checkConsoleToken(verify, token);
      if (!("expiresAtMs" in checked)) return checked;
      // Whole seconds (a JWT's `exp`), rounded down: never past the token's own `exp`.
      const exp = Math.floor(Math.min(Date.now() + ttlMs, checked.expiresAtMs) / 1000);
      const csrf = randomHex(32);
      const { principal } = checked;
      const cookie = await new SignJWT({ scope: [...principal.scopes].join(" "), csrf })
        .setProtectedHeader({ alg: "HS256", typ: type })
        .setSubject(principal.sub)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(await key);
      setSessionCookie(c, cookie, exp * 1000);
      return { kind: "admin", principal, via: "cookie", csrf, expiresAt: exp * 1000 };
    },
    logout(c) {
      // Nothing is held to end: the browser's copy goes; a copy taken earlier lasts until its `exp`.
      clearSessionCookie(c);
      return "This browser's console cookie is gone. (A console cookie here is not held on the server, so a copy taken earlier would last until it expires; rotate the secret to end every session.)";
    },
  };
}

/** Without a secret to seal cookies with: a Bearer admin only, and `?token=` refused with what is missing. */
export function bearerOnlyConsoleSessions(missing: string): ConsoleSessions {
  return {
    async resolve(c) {
      return bearerSession(c) ?? { kind: "anonymous" };
    },
    async login() {
      return { kind: "invalid", reason: `no console sessions here: ${missing}` };
    },
    logout(c) {
      clearSessionCookie(c);
      return "This browser's console cookie is gone.";
    },
  };
}
