// JWT attack table, claims: valid tokens pass; exp, nbf, iss, aud, sub and scope are enforced.
import type { JWTPayload } from "jose";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { AUDIENCE, ISSUER, SECRET } from "../auth/helpers.ts";
import { type AttackRow, claims, drop, hs256, seconds, signed } from "./jwt-table.ts";

export const claimRows: AttackRow[] = [
  { name: "valid HS256", gateway: "hs", token: () => hs256(claims()), status: 200 },
  {
    name: "valid RS256 from the JWKS",
    gateway: "jwks",
    token: ({ rsa }) => signed(claims(), rsa),
    status: 200,
  },
  {
    name: "valid ES256 from the JWKS",
    gateway: "jwks",
    token: ({ ec }) => signed(claims(), ec),
    status: 200,
  },
  {
    name: "both configured: HS256 uses the secret",
    gateway: "both",
    token: () => hs256(claims()),
    status: 200,
  },
  {
    name: "both configured: RS256 uses the JWKS",
    gateway: "both",
    token: ({ rsa }) => signed(claims(), rsa),
    status: 200,
  },
  {
    name: "issued by tokens.ts",
    gateway: "hs",
    token: () =>
      issueToken({
        sub: "alice",
        scopes: ["orders:read"],
        ttlSeconds: 60,
        secret: SECRET,
        issuer: ISSUER,
        audience: AUDIENCE,
      }),
    status: 200,
  },
  {
    name: "exp 3 s ago is within the 5 s tolerance",
    gateway: "hs",
    token: () => hs256(claims({ exp: seconds() - 3 })),
    status: 200,
  },
  {
    name: "expired",
    gateway: "hs",
    token: () => hs256(claims({ exp: seconds() - 60 })),
    status: 401,
    detail: "invalid token: expired",
  },
  {
    name: "nbf in the future",
    gateway: "hs",
    token: () => hs256(claims({ nbf: seconds() + 60 })),
    status: 401,
    detail: "invalid token: not yet valid",
  },
  {
    name: "iat in the future (an hour from now), even with exp further still",
    gateway: "hs",
    token: () => hs256(claims({ iat: seconds() + 3600, exp: seconds() + 7200 })),
    status: 401,
    detail: "invalid token: issued in the future",
  },
  {
    name: "no JWT_MAX_LIFETIME: a token valid for ten more years passes",
    gateway: "hs",
    token: () => hs256(claims({ exp: seconds() + 10 * 365 * 86_400 })),
    status: 200,
  },
  {
    name: "JWT_MAX_LIFETIME 1h: a token valid for 59 more minutes passes",
    gateway: "capped",
    token: () => hs256(claims({ exp: seconds() + 59 * 60 })),
    status: 200,
  },
  {
    name: "JWT_MAX_LIFETIME 1h: a token valid for 2 more hours is refused, whatever its iat",
    gateway: "capped",
    token: () => hs256(claims({ iat: seconds() - 3 * 3600, exp: seconds() + 2 * 3600 })),
    status: 401,
    detail: "invalid token: exp too far ahead",
  },
  {
    name: "iat in the future, RS256 from the JWKS",
    gateway: "jwks",
    token: (keys) => signed(claims({ iat: seconds() + 3600, exp: seconds() + 7200 }), keys.rsa),
    status: 401,
    detail: "invalid token: issued in the future",
  },
  {
    name: "iat 3 s ahead is within the 5 s tolerance",
    gateway: "hs",
    token: () => hs256(claims({ iat: seconds() + 3 })),
    status: 200,
  },
  {
    name: "exp 3 s ago is within the 5 s tolerance on the JWKS path too",
    gateway: "jwks",
    token: (keys) => signed(claims({ exp: seconds() - 3 }), keys.ec),
    status: 200,
  },
  {
    name: "nbf in the future, ES256 from the JWKS",
    gateway: "jwks",
    token: (keys) => signed(claims({ nbf: seconds() + 60 }), keys.ec),
    status: 401,
    detail: "invalid token: not yet valid",
  },
  {
    name: "exp a century away: the issuer decides a token's lifetime (SECURITY.md)",
    gateway: "both",
    token: () => hs256(claims({ exp: seconds() + 100 * 365 * 86_400 })),
    status: 200,
  },
  {
    name: "missing exp",
    gateway: "hs",
    token: () => hs256(drop(claims(), "exp")),
    status: 401,
    detail: "invalid token: missing exp",
  },
  {
    name: "exp not a number",
    gateway: "hs",
    token: () => hs256({ ...claims(), exp: "tomorrow" } as unknown as JWTPayload),
    status: 401,
  },
  {
    name: "wrong iss",
    gateway: "hs",
    token: () => hs256(claims({ iss: "https://evil.test" })),
    status: 401,
    detail: "invalid token: bad iss",
  },
  {
    name: "missing iss",
    gateway: "jwks",
    token: ({ rsa }) => signed(drop(claims(), "iss"), rsa),
    status: 401,
  },
  {
    name: "wrong aud",
    gateway: "jwks",
    token: ({ ec }) => signed(claims({ aud: "other" }), ec),
    status: 401,
    detail: "invalid token: bad aud",
  },
  {
    name: "missing sub",
    gateway: "hs",
    token: () => hs256(drop(claims(), "sub")),
    status: 401,
    detail: "invalid token: missing sub",
  },
  {
    name: "sub not a string",
    gateway: "hs",
    token: () => hs256({ ...claims(), sub: 42 } as unknown as JWTPayload),
    status: 401,
  },
  {
    // JSON.stringify writes the lone surrogate as the escape "\ud800", as a token's payload may carry it. It has no
    // UTF-8 form, so Postgres would read the sub as "alice\ufffd": another customer's orders and account.
    name: "sub with half a surrogate pair",
    gateway: "hs",
    token: () => hs256(claims({ sub: "alice\ud800" })),
    status: 401,
    detail: "invalid token: malformed sub",
  },
  {
    name: "sub with half a surrogate pair, from the JWKS",
    gateway: "jwks",
    token: ({ ec }) => signed(claims({ sub: "\udc00alice" }), ec),
    status: 401,
    detail: "invalid token: malformed sub",
  },
  {
    // Before, accepted: Postgres refuses NUL in text (the caller's security events were lost), and the activity
    // log's JSON keeps U+FFFD in its place (an admin "alice\u0000" was recorded as the admin "alice\ufffd").
    name: "sub with a NUL",
    gateway: "hs",
    token: () => hs256(claims({ sub: "alice\u0000" })),
    status: 401,
    detail: "invalid token: malformed sub",
  },
  {
    name: "sub with a line break or another control character, from the JWKS",
    gateway: "jwks",
    token: ({ ec }) => signed(claims({ sub: "alice\nadmin\u0085" }), ec),
    status: 401,
    detail: "invalid token: malformed sub",
  },
  {
    name: "sub with a surrogate pair (an emoji) is valid",
    gateway: "hs",
    token: () => hs256(claims({ sub: "alice\ud83d\ude00" })),
    status: 200,
  },
  {
    name: "scope not a string",
    gateway: "hs",
    token: () => hs256({ ...claims(), scope: ["admin"] } as unknown as JWTPayload),
    status: 401,
    detail: "invalid token: bad scope",
  },
  {
    name: "missing scope",
    gateway: "hs",
    token: () => hs256(claims({ scope: "inventory:read" })),
    status: 403,
    detail: "missing scope orders:read",
  },
  {
    name: "only unknown scopes",
    gateway: "hs",
    token: () => hs256(claims({ scope: "orders:*  ORDERS:READ" })),
    status: 403,
  },
  {
    name: "no scope at all",
    gateway: "jwks",
    token: ({ ec }) => signed(drop(claims(), "scope"), ec),
    status: 403,
  },
];
