// Test helpers for auth: a small gateway with the middleware and scoped routes, a local JWKS server, Postgres.
import { Hono } from "hono";
import { exportJWK, generateKeyPair, type JWK, type KeyLike } from "jose";
import postgres from "postgres";
import type { GatewayEnv } from "../../edge/env.ts";
import { errorHandler } from "../../edge/errors.ts";
import { type AuthOptions, auth, withAuthChallenge } from "../../edge/middleware/auth/index.ts";
import { requireScope } from "../../edge/middleware/auth/principal.ts";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const SECRET = "test-secret-test-secret-test-secret-0123456789";
export const ISSUER = "https://issuer.test";
export const AUDIENCE = "edgewise";

export interface TestGateway {
  app: Hono<GatewayEnv>;
  /** How many times a route handler ran: a refused request must leave it unchanged. */
  readonly hits: number;
}

/**
 * `GET /orders` needs orders:read, `PUT /inventory` inventory:write, `GET /public` nothing, and `GET /me`
 * shows the principal. The error handler is the app's: problem+json, and a challenge on every 401.
 */
export function testGateway(options: AuthOptions, mount?: (app: Hono<GatewayEnv>) => void): TestGateway {
  let hits = 0;
  const app = new Hono<GatewayEnv>();
  app.use(auth(options));
  app.get("/orders", (c) => {
    requireScope(c.var.principal, "orders:read");
    hits++;
    return c.json({ ok: true });
  });
  app.put("/inventory", (c) => {
    requireScope(c.var.principal, "inventory:write");
    hits++;
    return c.json({ ok: true });
  });
  app.get("/public", (c) => {
    hits++;
    return c.json({ ok: true });
  });
  app.get("/me", (c) => {
    hits++;
    const principal = c.var.principal;
    return c.json(principal ? { ...principal, scopes: [...principal.scopes].sort() } : null);
  });
  mount?.(app);
  // The gateway's own error handler (Hono's 400 for malformed JSON included), with the auth challenges.
  const handle = errorHandler({ report: () => {} });
  app.onError((error, c) => withAuthChallenge(handle(error, c)));
  return {
    app,
    get hits() {
      return hits;
    },
  };
}

/** What the JWKS accepts (RS256, ES256), and algorithms the attack table uses to be refused. */
export type SigningAlgorithm = "RS256" | "ES256" | "RS512" | "PS256";

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyLike;
  publicKey: KeyLike;
  jwk: JWK;
}

export async function signingKey(alg: SigningAlgorithm, kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicKey, jwk };
}

/**
 * A JWKS endpoint on 127.0.0.1 that counts its hits; `keys` can be changed to simulate rotation, and `fail`
 * makes it answer 502 (an identity provider that is down) until `recover`.
 */
export function startJwksServer(keys: JWK[]) {
  let hits = 0;
  const state = { keys, failing: false };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch() {
      hits++;
      return state.failing
        ? new Response("bad gateway", { status: 502 })
        : Response.json({ keys: state.keys });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/.well-known/jwks.json`,
    get hits() {
      return hits;
    },
    publish(next: JWK[]) {
      state.keys = next;
    },
    fail() {
      state.failing = true;
    },
    recover() {
      state.failing = false;
    },
    stop: () => server.stop(true),
  };
}

/** A postgres.js pool on a fresh schema of its own; `drop` removes the schema and ends the pool. */
export async function testDatabase(name: string) {
  const schema = `auth_test_${name}_${process.pid}_${Math.floor(Math.random() * 1e6)}`.toLowerCase();
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin`CREATE SCHEMA ${admin(schema)}`;
  const sql = postgres(TEST_DATABASE_URL, {
    max: 2,
    onnotice: () => {},
    connection: { search_path: schema },
  });
  return {
    sql,
    schema,
    async drop() {
      await sql.end();
      try {
        await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
      } finally {
        await admin.end();
      }
    },
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
