// The verified-token cache: a remembered token still expires on time; any changed byte is checked again.
import { describe, expect, test } from "bun:test";
import { errors, generateKeyPair, SignJWT } from "jose";
import { ManualClock } from "../../../shared/clock/index.ts";
import { jwtVerifier } from "./jwt.ts";
import { issueToken } from "./tokens.ts";

const secret = "a-secret-for-the-token-cache-tests-0123456789";

describe("verified-token cache", () => {
  test("a remembered token still expires on time, and a one-byte change is checked again", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 25));
    const verify = jwtVerifier({ secret, clock, clockToleranceSeconds: 0 });
    const token = await issueToken({
      sub: "u",
      scopes: ["orders:read"],
      ttlSeconds: 60,
      secret,
      now: clock.now(),
    });
    expect("principal" in ((await verify?.(token)) ?? {})).toBe(true);
    expect("principal" in ((await verify?.(token)) ?? {})).toBe(true);
    // A character in the middle of the signature (the last one's low bits are padding, which decoders ignore).
    const at = token.length - 20;
    const changed = token[at] === "A" ? "B" : "A";
    expect(await verify?.(`${token.slice(0, at)}${changed}${token.slice(at + 1)}`)).toEqual({
      reason: "bad signature",
    });
    clock.advance(61_000);
    expect(await verify?.(token)).toEqual({ reason: "expired" });
  });

  test("a key withdrawn from the key set stops a remembered token within a minute, though the wall clock steps back an hour", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 25));
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    let withdrawn = false;
    const verify = jwtVerifier({
      clock,
      jwks: async () => {
        if (withdrawn) throw new errors.JWKSNoMatchingKey();
        return publicKey;
      },
    });
    const issuedAt = Math.floor(clock.now() / 1000);
    const token = await new SignJWT({ scope: "orders:read" })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setSubject("u")
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + 3 * 3600)
      .sign(privateKey);
    expect("principal" in ((await verify?.(token)) ?? {})).toBe(true);
    withdrawn = true;
    clock.step(-3_600_000);
    clock.advance(59_000);
    expect("principal" in ((await verify?.(token)) ?? {})).toBe(true); // remembered, as within any minute
    clock.advance(1_000);
    expect(await verify?.(token)).toEqual({ reason: "unknown key" });
  });

  test("the remembered claims under another signature, of the same length or not, are refused; the token still passes", async () => {
    // Remembered by its claims, with the signature compared in constant time: a guess is verified, never matched.
    const clock = new ManualClock(Date.UTC(2026, 10, 25));
    const verify = jwtVerifier({ secret, clock });
    const token = await issueToken({ sub: "u", scopes: ["admin"], ttlSeconds: 60, secret, now: clock.now() });
    expect("principal" in ((await verify?.(token)) ?? {})).toBe(true);
    const signed = token.slice(0, token.lastIndexOf(".") + 1);
    const signature = token.slice(signed.length);
    for (const guess of [
      "A".repeat(signature.length),
      `${signature.slice(0, 20)}${signature[20] === "A" ? "B" : "A"}${signature.slice(21)}`,
      signature.slice(0, 20),
      `${signature}AAAA`,
      "",
    ]) {
      expect("principal" in ((await verify?.(`${signed}${guess}`)) ?? {})).toBe(false);
    }
    expect("principal" in ((await verify?.(token)) ?? {})).toBe(true);
  });

  test("two ES256 signatures of the same claims (ECDSA signs differently each time) both verify", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const verify = jwtVerifier({ jwks: async () => publicKey });
    const exp = Math.floor(Date.now() / 1000) + 600;
    const sign = () =>
      new SignJWT({ scope: "orders:read" })
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setSubject("u")
        .setExpirationTime(exp)
        .sign(privateKey);
    const [first, second] = [await sign(), await sign()];
    expect(first).not.toBe(second);
    for (const token of [first, second, first, second]) {
      expect("principal" in ((await verify?.(token)) ?? {})).toBe(true);
    }
  });
});
