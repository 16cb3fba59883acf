// The commerce query schemas refuse control characters in free text, which Postgres would turn into a 500.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { ListActivityQuery, ListOrdersQuery } from "./schemas.ts";

describe("free-text query parameters", () => {
  test("q, subject and type take words and punctuation, but no control characters", () => {
    expect(v.is(ListOrdersQuery, { q: "SKU-1 confirmed ünïcode & | !" })).toBe(true);
    expect(v.is(ListActivityQuery, { subject: "order/abc", type: "security.webhook_refused" })).toBe(true);
    for (const text of ["a\u0000b", "\u0000", "line\nbreak", "tab\there", "del\u007f", "c1\u0085"]) {
      expect(v.is(ListOrdersQuery, { q: text })).toBe(false);
      expect(v.is(ListActivityQuery, { subject: text })).toBe(false);
      expect(v.is(ListActivityQuery, { type: text })).toBe(false);
    }
  });
});
