// Rotating an identity provider's keys (JWT_JWKS_URL) under a running node, against a JWKS server of our own: what
// SECURITY.md's "Rotating credentials" tells an operator to expect, and that a restart ends a removed key at once.
import { afterAll, expect, test } from "bun:test";
import { SignJWT } from "jose";
import { restartableNode } from "../support/restartable-node.ts";
import { type SigningKey, signingKey, startJwksServer } from "./helpers.ts";

let jwks: ReturnType<typeof startJwksServer> | undefined;
const node = restartableNode("auth_jwks_rotation");
afterAll(() => jwks?.stop());

async function restart(): Promise<void> {
  if (!jwks) throw new Error("the JWKS server is not started");
  await node.restart({ JWT_JWKS_URL: jwks.url });
}

const read = async (key: SigningKey) => {
  const token = await new SignJWT({ sub: "admin", scope: "admin", exp: Math.floor(Date.now() / 1000) + 300 })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .sign(key.privateKey);
  return (
    await fetch(`${node.url}/v1/inventory/jwks-rotation`, { headers: { authorization: `Bearer ${token}` } })
  ).status;
};

test("a key published seconds before use waits out the cooldown; a removed key lasts until the set is fetched again, and a restart fetches it at once", async () => {
  const old = await signingKey("RS256", "old");
  const next = await signingKey("ES256", "next");
  jwks = startJwksServer([old.jwk]);
  await restart();
  expect(await read(old)).toBe(404); // 404: authenticated as admin, the sku was never set
  expect(jwks.hits).toBe(1);

  // Published and used at once, within 30 s of the node's fetch: refused for now, and no fetch made.
  jwks.publish([old.jwk, next.jwk]);
  expect(await read(next)).toBe(401);
  expect(jwks.hits).toBe(1);

  // The old key removed (a leak): the running node still holds the set it fetched.
  jwks.publish([next.jwk]);
  expect(await read(old)).toBe(404);

  // A restart drops the cached set: the removed key is refused, the new one accepted, on one fetch.
  await restart();
  expect(await read(old)).toBe(401);
  expect(await read(next)).toBe(404);
  expect(jwks.hits).toBe(2);
}, 90_000);
