// From a verified JWT's claims to a principal: `sub` is required, scopes come from `scope` (or `scp`).
import type { JWTPayload } from "jose";
import { hasControlCharacter, hasUnpairedSurrogate } from "../../../shared/text/index.ts";
import type { Principal } from "./principal.ts";
import { scopeSet } from "./scope-set.ts";

/** A principal, or why the claims do not make one; the reason names a claim, never its value. */
export type ClaimsOutcome = { principal: Principal } | { reason: string };

export function principalFromClaims(payload: JWTPayload): ClaimsOutcome {
  if (typeof payload.sub !== "string" || payload.sub === "") return { reason: "missing sub" };
  // Half a surrogate pair (`"\ud800"` in the payload's JSON) has no UTF-8 form: Postgres would store U+FFFD, so the
  // caller would own the orders, account and points of the customer whose sub has U+FFFD there.
  if (hasUnpairedSurrogate(payload.sub)) return { reason: "malformed sub" };
  // Nor a control character, which an API key's sub and a customerId may not hold either: Postgres refuses NUL in
  // text (the caller's rate-limit security events were lost) and the activity log's JSON stores U+FFFD for it (an
  // admin "a\u0000b" was recorded as "a\ufffdb", another admin).
  if (hasControlCharacter(payload.sub)) return { reason: "malformed sub" };
  const granted = grantedScopes(payload);
  if (granted === undefined) return { reason: "bad scope" };
  return { principal: { sub: payload.sub, scopes: scopeSet(granted), via: "jwt" } };
}

/**
 * `scope` is a space-separated string (RFC 9068, API.md) and wins when present. Without it, `scp` is read
 * too, as an array of strings or a space-separated string, because Okta and Entra ID issue that instead.
 * A claim of the wrong type refuses the token rather than silently granting nothing.
 */
function grantedScopes(payload: JWTPayload): string[] | undefined {
  const { scope, scp } = payload;
  if (scope !== undefined) return typeof scope === "string" ? split(scope) : undefined;
  if (scp === undefined) return [];
  if (typeof scp === "string") return split(scp);
  if (Array.isArray(scp) && scp.every((item): item is string => typeof item === "string")) return scp;
  return undefined;
}

const split = (text: string) => text.split(" ").filter(Boolean);
