// The JWT attack-table runner: four gateways (HS-only, JWKS-only, both, HS with a maximum lifetime) and one request per row against GET /orders.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { base64url, type JWTPayload, SignJWT } from "jose";
import { attackCategory } from "./report.ts";
import {
  AUDIENCE,
  bearer,
  ISSUER,
  SECRET,
  type SigningKey,
  signingKey,
  startJwksServer,
  type TestGateway,
  testGateway,
} from "../auth/helpers.ts";

export interface JwtFixtures {
  rsa: SigningKey;
  ec: SigningKey;
}

export interface AttackRow {
  name: string;
  /** `capped`: HS256 with JWT_MAX_LIFETIME of an hour. */
  gateway: "hs" | "jwks" | "both" | "capped";
  token: (keys: JwtFixtures) => Promise<string>;
  status: 200 | 401 | 403;
  /** The problem's `detail`, for refusals. */
  detail?: string;
}

const now = () => Math.floor(Date.now() / 1000);

/** Claims every gateway accepts, with orders:read; `extra` overrides. */
export const claims = (extra: JWTPayload = {}): JWTPayload => ({
  sub: "alice",
  scope: "orders:read",
  iss: ISSUER,
  aud: AUDIENCE,
  iat: now(),
  exp: now() + 300,
  ...extra,
});

export const drop = (payload: JWTPayload, name: keyof JWTPayload): JWTPayload => {
  const { [name]: _, ...rest } = payload;
  return rest;
};

export const hs256 = (payload: JWTPayload, key: Uint8Array | string = SECRET, kid?: string) =>
  new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT", ...(kid ? { kid } : {}) })
    .sign(typeof key === "string" ? new TextEncoder().encode(key) : key);

export const signed = (payload: JWTPayload, key: SigningKey) =>
  new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" }).sign(key.privateKey);

export const encode = (value: object) => base64url.encode(JSON.stringify(value));
export const seconds = now;

/**
 * Runs each table (title → rows) against the four gateways. Each row: the exact status; on refusal the handler
 * did not run, and nothing of the token comes back. Every row that expects a refusal is an attack case of the
 * `jwt` category; rows that expect 200 are the controls. Call once per file: the category's line sums all tables.
 */
export function runAttackTables(tables: Record<string, AttackRow[]>): void {
  const cases = attackCategory("jwt");
  let keys: JwtFixtures;
  let jwks: ReturnType<typeof startJwksServer>;
  let gateways: Record<AttackRow["gateway"], TestGateway>;

  beforeAll(async () => {
    keys = { rsa: await signingKey("RS256", "rsa-1"), ec: await signingKey("ES256", "ec-1") };
    jwks = startJwksServer([keys.rsa.jwk, keys.ec.jwk]);
    const checks = { issuer: ISSUER, audience: AUDIENCE };
    gateways = {
      hs: testGateway({ secret: SECRET, ...checks }),
      jwks: testGateway({ jwksUrl: jwks.url, ...checks }),
      both: testGateway({ secret: SECRET, jwksUrl: jwks.url, ...checks }),
      capped: testGateway({ secret: SECRET, ...checks, maxLifetimeSeconds: 3600 }),
    };
  });
  afterAll(() => jwks.stop());

  for (const [title, rows] of Object.entries(tables)) {
    describe(title, () => {
      for (const row of rows) {
        test(`${row.name} → ${row.status}`, async () => {
          const gateway = gateways[row.gateway];
          const token = await row.token(keys);
          const before = gateway.hits;
          const response = await gateway.app.request("/orders", { headers: bearer(token) });
          const text = await response.text();
          if (row.status === 200) {
            expect(response.status).toBe(200);
            expect(gateway.hits).toBe(before + 1);
            return;
          }
          const leaked = [...token.split(".").filter((part) => part.length > 8), "alice", "mallory"].filter(
            (part) => text.includes(part),
          );
          cases.tried(
            row.name,
            response.status === row.status &&
              gateway.hits === before &&
              response.headers.get("content-type") === "application/problem+json" &&
              leaked.length === 0,
          );
          expect(response.status).toBe(row.status);
          expect(gateway.hits).toBe(before);
          expect(response.headers.get("content-type")).toBe("application/problem+json");
          if (row.detail) expect(JSON.parse(text).detail).toBe(row.detail);
          expect(response.headers.get("www-authenticate")).toBe(
            row.status === 401 ? 'Bearer error="invalid_token"' : null,
          );
          expect(leaked).toEqual([]);
        });
      }
    });
  }
}
