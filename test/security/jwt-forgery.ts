// JWT attack table, forgeries: alg none, wrong keys, algorithm confusion, kid and key-header tricks, tampering, malformed tokens.
import { createHmac } from "node:crypto";
import { base64url, CompactSign, exportSPKI, type JWTPayload, SignJWT } from "jose";
import { SECRET, type SigningKey, signingKey, startJwksServer } from "../auth/helpers.ts";
import { type AttackRow, claims, encode, hs256, signed } from "./jwt-table.ts";

/** The attacker's own JWKS, named in `jku`/`x5u` headers: the gateway must never fetch it. The runner stops it. */
export const attackerJwks = startJwksServer([]);

/** A token signed with `key` under any protected header the attacker likes. */
const withHeader = (payload: JWTPayload, key: SigningKey, header: Record<string, unknown>) =>
  new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: "JWT", ...header }).sign(key.privateKey);

const attacker = () => signingKey("RS256", "attacker");

/** HS256 over any header, signed by hand: jose refuses to sign some of the headers an attacker sends. */
const handSigned = (header: Record<string, unknown>, payload: JWTPayload, secret = SECRET) => {
  const input = `${encode(header)}.${encode(payload)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
};

export const forgeryRows: AttackRow[] = [
  {
    name: "alg none",
    gateway: "hs",
    token: async () => `${encode({ alg: "none", typ: "JWT" })}.${encode(claims())}.`,
    status: 401,
    detail: "invalid token: algorithm not accepted",
  },
  {
    name: "alg none against the JWKS gateway",
    gateway: "jwks",
    token: async () => `${encode({ alg: "none" })}.${encode(claims())}.`,
    status: 401,
  },
  {
    name: "alg NONE with a signature part",
    gateway: "both",
    token: async () => `${encode({ alg: "NONE" })}.${encode(claims())}.${base64url.encode("x")}`,
    status: 401,
  },
  {
    name: "wrong HMAC key",
    gateway: "hs",
    token: () => hs256(claims(), "another-secret-another-secret-another-secret"),
    status: 401,
    detail: "invalid token: bad signature",
  },
  {
    name: "HS256 signed with the RSA public key's PEM, JWKS gateway (algorithm confusion)",
    gateway: "jwks",
    token: async ({ rsa }) =>
      hs256(claims(), new TextEncoder().encode(await exportSPKI(rsa.publicKey)), rsa.kid),
    status: 401,
    detail: "invalid token: algorithm not accepted",
  },
  {
    name: "HS256 signed with the RSA public JWK's bytes, JWKS gateway (algorithm confusion)",
    gateway: "jwks",
    token: ({ rsa }) => hs256(claims(), new TextEncoder().encode(JSON.stringify(rsa.jwk)), rsa.kid),
    status: 401,
  },
  {
    name: "HS256 signed with the RSA public key's PEM, both configured",
    gateway: "both",
    token: async ({ rsa }) =>
      hs256(claims(), new TextEncoder().encode(await exportSPKI(rsa.publicKey)), rsa.kid),
    status: 401,
    detail: "invalid token: bad signature",
  },
  {
    name: "an HMAC signature labelled RS256, both configured",
    gateway: "both",
    token: async ({ rsa }) => {
      const [, payload, signature] = (await hs256(claims())).split(".");
      return `${encode({ alg: "RS256", kid: rsa.kid })}.${payload}.${signature}`;
    },
    status: 401,
  },
  {
    name: "RS256 token against an HS-only gateway",
    gateway: "hs",
    token: ({ rsa }) => signed(claims(), rsa),
    status: 401,
    detail: "invalid token: algorithm not accepted",
  },
  {
    name: "a kid the JWKS does not have",
    gateway: "jwks",
    token: async () => signed(claims(), await signingKey("RS256", "nobody")),
    status: 401,
    detail: "invalid token: unknown key",
  },
  {
    name: "tampered payload (a valid signature over a different payload)",
    gateway: "hs",
    token: async () => {
      const [header, , signature] = (await hs256(claims())).split(".");
      return `${header}.${encode(claims({ sub: "mallory", scope: "admin" }))}.${signature}`;
    },
    status: 401,
    detail: "invalid token: bad signature",
  },
  {
    name: "tampered RS256 payload",
    gateway: "jwks",
    token: async ({ rsa }) => {
      const [header, , signature] = (await signed(claims(), rsa)).split(".");
      return `${header}.${encode(claims({ scope: "admin" }))}.${signature}`;
    },
    status: 401,
  },
  {
    name: "malformed: not a JWT",
    gateway: "hs",
    token: async () => "not-a-jwt",
    status: 401,
    detail: "invalid token: malformed",
  },
  { name: "malformed: garbage parts", gateway: "both", token: async () => "a.b.c", status: 401 },
  {
    name: "malformed: validly signed, but the payload is not JSON",
    gateway: "hs",
    token: () =>
      new CompactSign(new TextEncoder().encode("not json"))
        .setProtectedHeader({ alg: "HS256" })
        .sign(new TextEncoder().encode(SECRET)),
    status: 401,
    detail: "invalid token: malformed",
  },
  {
    name: "kid path traversal to /dev/null, HMAC over an all-zero key",
    gateway: "both",
    token: () => hs256(claims(), new Uint8Array(32), "../../../../../../dev/null"),
    status: 401,
    detail: "invalid token: bad signature",
  },
  {
    name: "kid SQL injection, signed with the attacker's key",
    gateway: "jwks",
    token: async () => signed(claims(), { ...(await attacker()), kid: "x' UNION SELECT 'k' --" }),
    status: 401,
    detail: "invalid token: unknown key",
  },
  {
    name: "a kid from the JWKS, signed with the attacker's key",
    gateway: "jwks",
    token: async ({ rsa }) => signed(claims(), { ...(await attacker()), kid: rsa.kid }),
    status: 401,
    detail: "invalid token: bad signature",
  },
  {
    name: "the EC key's kid on an RS256 token",
    gateway: "jwks",
    token: async ({ ec }) => signed(claims(), { ...(await attacker()), kid: ec.kid }),
    status: 401,
  },
  {
    name: "embedded jwk header carrying the attacker's public key",
    gateway: "jwks",
    token: async ({ rsa }) => {
      const key = await attacker();
      return withHeader(claims(), key, { kid: rsa.kid, jwk: { ...key.jwk, kid: rsa.kid } });
    },
    status: 401,
    detail: "invalid token: bad signature",
  },
  {
    name: "jku header pointing at the attacker's JWKS",
    gateway: "jwks",
    token: async () => {
      const key = await attacker();
      attackerJwks.publish([key.jwk]);
      return withHeader(claims(), key, { kid: key.kid, jku: attackerJwks.url });
    },
    status: 401,
    detail: "invalid token: unknown key",
  },
  {
    name: "x5u header pointing at the attacker's server",
    gateway: "both",
    token: async () => {
      const key = await attacker();
      return withHeader(claims(), key, { kid: key.kid, x5u: attackerJwks.url });
    },
    status: 401,
  },
  {
    name: "HS512 with the right secret (only HS256 is accepted)",
    gateway: "hs",
    token: () =>
      new SignJWT(claims()).setProtectedHeader({ alg: "HS512" }).sign(new TextEncoder().encode(SECRET)),
    status: 401,
    detail: "invalid token: algorithm not accepted",
  },
  {
    name: "alg 'HS256 ' with a trailing space, signed with the right secret",
    gateway: "hs",
    token: async () => handSigned({ alg: "HS256 ", typ: "JWT" }, claims()),
    status: 401,
    detail: "invalid token: algorithm not accepted",
  },
  {
    name: "RS512 under the JWKS's RSA kid (only RS256 and ES256 are accepted)",
    gateway: "jwks",
    token: async ({ rsa }) => withHeader(claims(), await signingKey("RS512", "x"), { kid: rsa.kid }),
    status: 401,
  },
  {
    name: "PS256 under the JWKS's RSA kid",
    gateway: "jwks",
    token: async ({ rsa }) => withHeader(claims(), await signingKey("PS256", "x"), { kid: rsa.kid }),
    status: 401,
  },
  {
    name: "an unknown critical header",
    gateway: "hs",
    token: async () => handSigned({ alg: "HS256", crit: ["exp-policy"], "exp-policy": "never" }, claims()),
    status: 401,
  },
  {
    name: "HS256 with the signature stripped",
    gateway: "hs",
    token: async () => `${(await hs256(claims())).split(".").slice(0, 2).join(".")}.`,
    status: 401,
  },
  {
    name: "a JWE-shaped token (five parts)",
    gateway: "both",
    token: async () => `${await hs256(claims())}.${base64url.encode("iv")}.${base64url.encode("tag")}`,
    status: 401,
  },
  {
    name: "a token over 8 KiB",
    gateway: "hs",
    token: () => hs256(claims({ pad: "x".repeat(9_000) })),
    status: 401,
    detail: "invalid token: malformed",
  },
];
