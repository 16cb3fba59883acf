// Unit tests of request signing and the constant-time comparison every secret check uses.
import { describe, expect, test } from "bun:test";
import { hmacSigner, timingSafeEqual } from "./hmac.ts";

describe("timingSafeEqual", () => {
  test("equal only when both strings are identical, whatever their lengths", () => {
    expect(timingSafeEqual("abcd", "abcd")).toBe(true);
    expect(timingSafeEqual("abcd", "abce")).toBe(false);
    expect(timingSafeEqual("abcd", "abc")).toBe(false);
    expect(timingSafeEqual("abc", "abcd")).toBe(false);
    expect(timingSafeEqual("", "")).toBe(true);
    // Compared as UTF-8 bytes: different characters never collapse to the same code unit.
    expect(timingSafeEqual("é", "e")).toBe(false);
  });
});

describe("hmacSigner", () => {
  test("verifies its own signatures, and nothing altered or malformed", async () => {
    const signer = hmacSigner("a-secret-of-enough-length-0123456789");
    const signature = await signer.sign("message");
    expect(await signer.verify("message", signature)).toBe(true);
    expect(await signer.verify("messagE", signature)).toBe(false);
    expect(await hmacSigner("another-secret-of-enough-length-0123").verify("message", signature)).toBe(false);
    expect(await signer.verify("message", signature.toUpperCase())).toBe(false);
    expect(await signer.verify("message", "zz")).toBe(false);
  });
});
