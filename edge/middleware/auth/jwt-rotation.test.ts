// Unit tests for a JWT_SECRET rotation: the previous secret verifies HS256 tokens beside the current one, and nothing else.
import { expect, test } from "bun:test";
import { type JWTPayload, SignJWT } from "jose";
import { jwtVerifier } from "./jwt.ts";

const current = "current-secret-current-secret-current-sec";
const previous = "previous-secret-previous-secret-previous";
const sign = (secret: string, claims: JWTPayload = {}) =>
  new SignJWT({ sub: "a", exp: Math.floor(Date.now() / 1000) + 60, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(secret));

test("tokens of either secret verify; a third secret's are a bad signature", async () => {
  const verify = jwtVerifier({ secret: current, previousSecret: previous, cacheEntries: 0 });
  expect(await verify?.(await sign(current))).toHaveProperty("principal");
  expect(await verify?.(await sign(previous))).toHaveProperty("principal");
  expect(await verify?.(await sign("another-secret-another-secret-another-s"))).toEqual({
    reason: "bad signature",
  });
});

test("the previous secret's token is still checked like any other: expired is expired", async () => {
  const verify = jwtVerifier({ secret: current, previousSecret: previous, cacheEntries: 0 });
  const expired = await sign(previous, { exp: Math.floor(Date.now() / 1000) - 60 });
  expect(await verify?.(expired)).toEqual({ reason: "expired" });
});

test("without it, the old secret's tokens are refused; a short one is refused at construction", async () => {
  const verify = jwtVerifier({ secret: current, cacheEntries: 0 });
  expect(await verify?.(await sign(previous))).toEqual({ reason: "bad signature" });
  expect(() => jwtVerifier({ secret: current, previousSecret: "short" })).toThrow(/at least 32 bytes/);
});
