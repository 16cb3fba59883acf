// Actor keys: URL-safe, and never a dot segment, which no delivery URL can carry.
import { describe, expect, test } from "bun:test";
import { assertValidKey, parseAddress } from "./address.ts";

describe("actor keys", () => {
  test("URL-safe keys pass, dots included", () => {
    for (const key of ["a", "order-1", "A.b_c~d", "...", ".a", "a.", "..a", "~", "x".repeat(256)]) {
      expect(() => assertValidKey(key)).not.toThrow();
    }
  });

  test("'.' and '..' are refused: a URL parser drops them from /_edgewise/deliver/<type>/<key>", () => {
    expect(new URL("http://h/_edgewise/deliver/billing/.").pathname).toBe("/_edgewise/deliver/billing/");
    for (const key of [".", ".."]) {
      expect(() => assertValidKey(key)).toThrow(expect.objectContaining({ code: "actor.invalid_key" }));
      expect(() => parseAddress(`inventory/${key}`)).toThrow(
        expect.objectContaining({ code: "actor.invalid_key" }),
      );
    }
  });

  test("anything else outside the unreserved set, empty or too long is refused", () => {
    for (const key of ["", "a/b", "a b", "%2e", "é", "x".repeat(257), 42, undefined]) {
      expect(() => assertValidKey(key)).toThrow(expect.objectContaining({ code: "actor.invalid_key" }));
    }
  });
});
