// Who is calling, and what they may do: scopes as in API.md, with `admin` implying every scope.
import type { MiddlewareHandler } from "hono";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";

export const scopes = [
  "orders:read",
  "orders:write",
  "inventory:read",
  "inventory:write",
  "billing:read",
  "billing:write",
  "loyalty:read",
  "webhooks:admin",
  "admin",
] as const;

export type Scope = (typeof scopes)[number];

export interface Principal {
  /** The caller: a JWT's `sub`, or the subject an API key was issued to. */
  sub: string;
  scopes: ReadonlySet<string>;
  via: "jwt" | "api-key";
  /** The API key's id (never its secret) when `via` is `api-key`: the admin events name it. */
  apiKeyId?: string;
}

export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has("admin") || principal.scopes.has(scope);
}

/** 401 for an anonymous caller, 403 for a caller without the scope. */
export function requireScope(principal: Principal | undefined, scope: Scope): Principal {
  if (!principal) throw new EdgewiseError("unauthorized", "authentication required");
  if (!hasScope(principal, scope)) throw new EdgewiseError("forbidden", `missing scope ${scope}`);
  return principal;
}

/**
 * `requireScope` as a middleware, for before the route's `validate`: an anonymous caller gets 401 and one without
 * the scope 403, never a 400 about a body or query it may not send anyway. The handler's own `requireScope` then
 * hands it the caller.
 */
export function scoped(scope: Scope): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    requireScope(c.var.principal, scope);
    await next();
  };
}

/**
 * Object-level authorization: without `admin`, a caller may only touch objects whose owner is itself.
 * Call it before revealing whether the object exists, so someone else's id gets 403, never 404.
 */
export function requireOwner(principal: Principal, ownerId: string): void {
  if (principal.scopes.has("admin") || principal.sub === ownerId) return;
  throw new EdgewiseError("forbidden", "this object belongs to someone else");
}
