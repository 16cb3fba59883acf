// The verified-token cache: a remembered token still expires on time; any changed byte is checked again.
import { describe, expect, test } from "bun:test";
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
});
