// JWT_JWKS_URL on a running node: the API and the console share one key set, an outage of the provider is logged, and JWT_MAX_LIFETIME holds.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { type SigningKey, signingKey, startJwksServer } from "./helpers.ts";

const capture = captureSink();
const schema = uniqueSchema("auth_jwks_node");
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-jwks-node-"));
let jwks: ReturnType<typeof startJwksServer>;
let rsa: SigningKey;
let node: EdgewiseNode;

beforeAll(async () => {
  rsa = await signingKey("RS256", "rsa-1");
  jwks = startJwksServer([rsa.jwk]);
  jwks.fail();
  node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: TEST_DATABASE_URL,
      EDGEWISE_DATA_DIR: dataDir,
      JWT_JWKS_URL: jwks.url,
      JWT_MAX_LIFETIME: "1h",
    }),
    ...referenceSystem(),
    schema,
    brokerTimeScale: 0.01,
    logger: createLogger({ level: "info", sink: capture.sink }),
  });
}, 30_000);
afterAll(async () => {
  await node?.stop();
  jwks?.stop();
  await dropSchema(schema);
  rmSync(dataDir, { recursive: true, force: true });
});

const adminToken = (sub: string, lifetimeSeconds = 300) =>
  new SignJWT({ sub, scope: "admin", exp: Math.floor(Date.now() / 1000) + lifetimeSeconds })
    .setProtectedHeader({ alg: "RS256", kid: rsa.kid })
    .sign(rsa.privateKey);

const read = async (token: string) =>
  (await fetch(`${node.url}/v1/inventory/jwks-node`, { headers: { authorization: `Bearer ${token}` } }))
    .status;

test("the provider down at start: 503, one fetch, and one warning, never the token", async () => {
  const token = await adminToken("admin-0");
  expect([await read(token), await read(token), await read(token)]).toEqual([503, 503, 503]);
  expect(jwks.hits).toBe(1);
  const warned = capture.lines.filter((line) => line.includes('"msg":"JWKS:'));
  expect(warned).toHaveLength(1);
  expect(warned[0]).not.toContain(token);
});

test("once it is back, the API and the console's ?token= login verify with one key set: one fetch", async () => {
  jwks.recover();
  await Bun.sleep(1_100); // past the first retry's backoff
  expect(await read(await adminToken("admin-1"))).toBe(404);
  const login = await fetch(`${node.url}/_console?token=${await adminToken("admin-2")}`, {
    redirect: "manual",
  });
  expect(login.status).toBe(303);
  expect(jwks.hits).toBe(2);
});

test("JWT_MAX_LIFETIME on a node: a token still valid for 2 h is refused under a 1 h limit, the API and the console alike", async () => {
  const longLived = await adminToken("admin-3", 2 * 3600);
  const response = await fetch(`${node.url}/v1/inventory/jwks-node`, {
    headers: { authorization: `Bearer ${longLived}` },
  });
  expect(response.status).toBe(401);
  expect(((await response.json()) as { detail: string }).detail).toBe("invalid token: exp too far ahead");
  const login = await fetch(`${node.url}/_console?token=${longLived}`, { redirect: "manual" });
  expect(login.status).not.toBe(303);
  expect(await read(await adminToken("admin-4", 50 * 60))).toBe(404);
});
