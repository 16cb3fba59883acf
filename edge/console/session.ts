// Who may open the console: an admin JWT as a Bearer header, or a console session (cookie) that `?token=` opens once.
//
// The cookie holds an opaque session id, never the JWT: a copy of it opens the console only, only on this node,
// and only until the session ends (sign-out, its lifetime, or the token's `exp`, whichever comes first). Sessions
// live in the process, like the live streams; a restart signs everyone out.
import { decodeJwt } from "jose";
import { timingSafeEqual } from "../../shared/crypto/hmac.ts";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { GatewayEnv } from "../env.ts";
import { type JwtOptions, type JwtVerifier, jwtVerifier } from "../middleware/auth/jwt.ts";
import { hasScope, type Principal } from "../middleware/auth/principal.ts";
import { randomHex } from "../../shared/crypto/hex.ts";
import { evictLeastRecent, touch } from "../../shared/collections/recency.ts";

export const sessionCookie = "edgewise_console";
const cookiePath = "/_console";
/** A session's cookie is 64 hex digits (256 random bits): the first 32 find it, the last 32 prove it. */
const selectorLength = 32;

export type Session =
  | {
      kind: "admin";
      principal: Principal;
      via: "bearer" | "cookie";
      /** The form token; empty for a Bearer caller, which no other site can make send a request. */
      csrf: string;
      /** Aborted when the session ends; absent for a Bearer caller. */
      ended?: AbortSignal;
      /** When the session ends at the latest, in epoch ms; absent for a Bearer caller. */
      expiresAt?: number;
    }
  | { kind: "anonymous" }
  /** The cookie names no session: it was signed out, has expired, or the node restarted. */
  | { kind: "ended" }
  | { kind: "invalid"; reason: string }
  | { kind: "forbidden"; principal: Principal };

export interface SessionOptions {
  /** How long a session lasts at most, in ms (never past its token's `exp`). Default 8 h. */
  ttlMs?: number;
  /** Sessions held at once; signing in past it ends the one unused the longest. Default 1,000. */
  maxSessions?: number;
}

export interface ConsoleSessions {
  /** The caller: the gateway's principal (Bearer), or the session its cookie names. */
  resolve(c: Context<GatewayEnv>): Promise<Session>;
  /** Checks a `?token=`; for an admin, opens a session and sets its cookie (ending the one the cookie named). */
  login(c: Context<GatewayEnv>, token: string): Promise<Session>;
  /** Ends the cookie's session (on the server, where one is held) and clears the cookie; says what it did. */
  logout(c: Context<GatewayEnv>): string;
}

interface Held {
  /** The cookie's second half, compared in constant time; the map is keyed by its first half. */
  verifier: string;
  principal: Principal;
  csrf: string;
  expiresAt: number;
  end: AbortController;
}

export function consoleSessions(jwt: JwtOptions | undefined, options: SessionOptions = {}): ConsoleSessions {
  const verify = jwt ? jwtVerifier(jwt) : undefined;
  const ttlMs = options.ttlMs ?? 8 * 3600_000;
  const maxSessions = options.maxSessions ?? 1_000;
  /**
   * By the cookie's first half, least recently used first (a Map keeps insertion order). A lookup by the whole
   * cookie would compare a caller's guess with a session's secret in a string comparison that stops at the first
   * difference; here only the first half is a lookup key, and the second half is compared in constant time.
   */
  const held = new Map<string, Held>();

  const lookup = (cookie: string): { key: string; session: Held } | undefined => {
    const key = cookie.slice(0, selectorLength);
    const session = held.get(key);
    if (!session || !timingSafeEqual(cookie.slice(selectorLength), session.verifier)) return undefined;
    return { key, session };
  };
  const endKey = (key: string, session: Held) => {
    held.delete(key);
    session.end.abort();
  };
  const end = (cookie: string) => {
    const found = lookup(cookie);
    if (found) endKey(found.key, found.session);
  };
  const find = (cookie: string): Held | undefined => {
    const found = lookup(cookie);
    if (!found) return undefined;
    if (found.session.expiresAt <= Date.now()) {
      endKey(found.key, found.session);
      return undefined;
    }
    // Last used goes last: past the bound, the session unused the longest ends, not one in use.
    touch(held, found.key);
    return found.session;
  };
  const open = (principal: Principal, tokenExpiresAtMs: number): { id: string; session: Held } => {
    for (const [key, session] of held) if (session.expiresAt <= Date.now()) endKey(key, session);
    evictLeastRecent(held, maxSessions, { evicted: (session) => session.end.abort() });
    const expiresAt = Math.min(Date.now() + ttlMs, tokenExpiresAtMs);
    const id = randomHex(32);
    const verifier = id.slice(selectorLength);
    const session = { verifier, principal, csrf: randomHex(32), expiresAt, end: new AbortController() };
    held.set(id.slice(0, selectorLength), session);
    return { id, session };
  };
  const admitted = (session: Held): Session => ({
    kind: "admin",
    principal: session.principal,
    via: "cookie",
    csrf: session.csrf,
    ended: session.end.signal,
    expiresAt: session.expiresAt,
  });

  return {
    async resolve(c) {
      const bearer = bearerSession(c);
      if (bearer) return bearer;
      const id = getCookie(c, sessionCookie);
      if (id === undefined) return { kind: "anonymous" };
      const session = find(id);
      if (session) return admitted(session);
      clearSessionCookie(c);
      return { kind: "ended" };
    },
    async login(c, token) {
      const checked = await checkConsoleToken(verify, token);
      if (!("expiresAtMs" in checked)) return checked;
      const previous = getCookie(c, sessionCookie);
      if (previous !== undefined) end(previous);
      const { id, session } = open(checked.principal, checked.expiresAtMs);
      setSessionCookie(c, id, session.expiresAt);
      return admitted(session);
    },
    logout(c) {
      const id = getCookie(c, sessionCookie);
      if (id !== undefined) end(id);
      clearSessionCookie(c);
      return "The console session has ended on this node, and its cookie is gone.";
    },
  };
}

/** The gateway's principal (a Bearer JWT, verified per request): an admin session without a cookie, or forbidden. */
export function bearerSession(c: Context<GatewayEnv>): Session | undefined {
  const principal = c.var.principal;
  if (!principal) return undefined;
  return hasScope(principal, "admin")
    ? { kind: "admin", principal, via: "bearer", csrf: "" }
    : { kind: "forbidden", principal };
}

/** A `?token=` checked for sign-in: an admin and when its token expires (epoch ms), or why it is refused. */
export async function checkConsoleToken(
  verify: JwtVerifier | undefined,
  token: string,
): Promise<{ principal: Principal; expiresAtMs: number } | Session> {
  if (!verify) return { kind: "invalid", reason: "JWTs are not accepted" };
  if (token.length === 0 || token.length > 8192) return { kind: "invalid", reason: "malformed" };
  const outcome = await verify(token);
  if (!("principal" in outcome)) return { kind: "invalid", reason: outcome.reason };
  if (!hasScope(outcome.principal, "admin")) return { kind: "forbidden", principal: outcome.principal };
  const exp = decodeJwt(token).exp; // verified just before; required
  return {
    principal: outcome.principal,
    expiresAtMs: typeof exp === "number" ? exp * 1000 : Number.POSITIVE_INFINITY,
  };
}

/**
 * The session cookie's attributes: HttpOnly, SameSite=Strict, only under /_console, Secure over https: the
 * connection's, or the client's as a trusted proxy forwards it (client-ip's `clientProto`), never a header any
 * client can send.
 */
function cookieAttributes(c: Context<GatewayEnv>) {
  const secure = (c.var.clientProto ?? new URL(c.req.url).protocol.slice(0, -1)) === "https";
  return { path: cookiePath, httpOnly: true, sameSite: "Strict", secure } as const;
}

/** The session cookie, gone at `expiresAt`. */
export function setSessionCookie(c: Context<GatewayEnv>, value: string, expiresAt: number): void {
  setCookie(c, sessionCookie, value, {
    ...cookieAttributes(c),
    maxAge: Math.max(0, Math.floor((expiresAt - Date.now()) / 1000)),
  });
}

/** Clears the session cookie (`Max-Age=0`) with the same attributes as the cookie it replaces. */
export function clearSessionCookie(c: Context<GatewayEnv>): void {
  deleteCookie(c, sessionCookie, cookieAttributes(c));
}

/** Constant-time comparison of a CSRF token sent with the session's; an empty one (no cookie) never matches. */
export function sameToken(given: string, expected: string): boolean {
  return expected.length > 0 && timingSafeEqual(given, expected);
}
