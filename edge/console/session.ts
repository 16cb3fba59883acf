// Who may open the console: an admin JWT as a Bearer header, as `?token=` once (it becomes a cookie), or the cookie.
import { timingSafeEqual } from "../../shared/crypto/hmac.ts";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { GatewayEnv } from "../env.ts";
import { type JwtOptions, jwtVerifier } from "../middleware/auth/jwt.ts";
import { hasScope, type Principal } from "../middleware/auth/principal.ts";

export const sessionCookie = "edgewise_console";
const cookiePath = "/_console";

export type Session =
  | { kind: "admin"; principal: Principal; via: "bearer" | "cookie"; csrf: string }
  | { kind: "anonymous" }
  | { kind: "invalid"; reason: string }
  | { kind: "forbidden"; principal: Principal };

export interface ConsoleSessions {
  /** Resolves the caller from the gateway's principal (Bearer), or the session cookie. */
  resolve(c: Context<GatewayEnv>): Promise<Session>;
  /** Checks a `?token=`; on success sets the session cookie. */
  login(c: Context<GatewayEnv>, token: string): Promise<Session>;
  logout(c: Context<GatewayEnv>): void;
  /** The form token for a session cookie: an HMAC of it under a key that lives as long as the process. */
  csrfFor(cookie: string): Promise<string>;
}

const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, "0")).join("");

export function consoleSessions(jwt: JwtOptions | undefined): ConsoleSessions {
  const verify = jwt ? jwtVerifier(jwt) : undefined;
  const key = crypto.subtle.importKey(
    "raw",
    crypto.getRandomValues(new Uint8Array(32)),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const csrfFor = async (cookie: string) =>
    hex(await crypto.subtle.sign("HMAC", await key, new TextEncoder().encode(`csrf:${cookie}`)));

  async function check(token: string, via: "bearer" | "cookie"): Promise<Session> {
    if (!verify) return { kind: "invalid", reason: "JWTs are not accepted" };
    if (token.length === 0 || token.length > 8192) return { kind: "invalid", reason: "malformed" };
    const outcome = await verify(token);
    if (!("principal" in outcome)) return { kind: "invalid", reason: outcome.reason };
    if (!hasScope(outcome.principal, "admin")) return { kind: "forbidden", principal: outcome.principal };
    return {
      kind: "admin",
      principal: outcome.principal,
      via,
      csrf: via === "cookie" ? await csrfFor(token) : "",
    };
  }

  return {
    csrfFor,
    async resolve(c) {
      const principal = c.var.principal;
      if (principal) {
        return hasScope(principal, "admin")
          ? { kind: "admin", principal, via: "bearer", csrf: "" }
          : { kind: "forbidden", principal };
      }
      const cookie = getCookie(c, sessionCookie);
      if (cookie === undefined) return { kind: "anonymous" };
      const session = await check(cookie, "cookie");
      if (session.kind === "invalid") deleteCookie(c, sessionCookie, { path: cookiePath });
      return session;
    },
    async login(c, token) {
      const session = await check(token, "cookie");
      if (session.kind === "admin") {
        const url = new URL(c.req.url);
        const secure = url.protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
        setCookie(c, sessionCookie, token, {
          path: cookiePath,
          httpOnly: true,
          sameSite: "Strict",
          secure,
          maxAge: 8 * 3600,
        });
      }
      return session;
    },
    logout(c) {
      deleteCookie(c, sessionCookie, { path: cookiePath });
    },
  };
}

/** Constant-time comparison of two CSRF tokens; an empty one (a session without a cookie) never matches. */
export function sameToken(a: string, b: string): boolean {
  return a.length > 0 && timingSafeEqual(a, b);
}
