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
    // Different characters never collapse to the same code unit.
    expect(timingSafeEqual("é", "e")).toBe(false);
    expect(timingSafeEqual("é", "é")).toBe(true);
    expect(timingSafeEqual("\u{1F511}key", "\u{1F511}key")).toBe(true);
  });

  test("a lone surrogate is not U+FFFD: strings that differ only there are not equal", () => {
    // A UTF-8 encoding of both sides made each lone surrogate U+FFFD, and called these equal.
    expect(timingSafeEqual("\uD800", "\uFFFD")).toBe(false);
    expect(timingSafeEqual("a\uDC00b", "a\uFFFDb")).toBe(false);
    expect(timingSafeEqual("\uD800", "\uDBFF")).toBe(false);
  });

  test("a difference anywhere, or in length only, is found: first, middle, last, one code unit more or less", () => {
    const secret = "s3cr3t-token-0123456789abcdef";
    const at = (i: number) => `${secret.slice(0, i)}${secret[i] === "x" ? "y" : "x"}${secret.slice(i + 1)}`;
    for (const i of [0, 14, secret.length - 1]) expect(timingSafeEqual(at(i), secret)).toBe(false);
    expect(timingSafeEqual(`${secret}\0`, secret)).toBe(false);
    expect(timingSafeEqual(secret, secret.slice(0, -1))).toBe(false);
    expect(timingSafeEqual("", secret)).toBe(false);
    expect(timingSafeEqual(secret, `${secret}`)).toBe(true);
    // Wrapping round a shorter secret never makes a repetition of it equal.
    expect(timingSafeEqual("abcabc", "abc")).toBe(false);
    expect(timingSafeEqual("abc", "")).toBe(false);
    expect(timingSafeEqual("", "")).toBe(true);
  });

  test("the time tells nothing of the secret's length: a short guess against a huge secret takes no longer", () => {
    // 32 M code units: looping over the longer string took tens of ms, so timing guesses of rising length found it.
    const secret = "s".repeat(32 * 1024 * 1024);
    const guess = "s".repeat(64);
    const fastest = (run: () => void) => {
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        run();
        best = Math.min(best, performance.now() - start);
      }
      return best;
    };
    expect(timingSafeEqual(guess, secret)).toBe(false);
    expect(fastest(() => timingSafeEqual(guess, secret))).toBeLessThan(1);
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
