// JWT attack table, forgeries: alg none, wrong keys, algorithm confusion, tampering, malformed tokens.
import { base64url, CompactSign, exportSPKI } from "jose";
import { SECRET, signingKey } from "./helpers.ts";
import { type AttackRow, claims, encode, hs256, runAttackTable, signed } from "./jwt-table.ts";

const rows: AttackRow[] = [
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
];

runAttackTable("JWT forgeries against GET /orders", rows);
