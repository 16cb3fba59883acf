// The list `limit`: what it takes, and that every refusal reads "must be 1 to 100" rather than valibot's union.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { fieldIssues } from "../../../shared/errors/valibot.ts";
import { PageLimit } from "./page-limit.ts";

describe("PageLimit", () => {
  test("takes 1 to 100, as a number or as the query string's digits; 20 when absent", () => {
    for (const [input, output] of [
      ["1", 1],
      ["100", 100],
      ["007", 7],
      [42, 42],
      [undefined, 20],
    ] as const) {
      expect(v.parse(PageLimit, input)).toBe(output);
    }
  });

  test("anything else is 'must be 1 to 100', whatever the text", () => {
    for (const input of [
      "0",
      "101",
      "abc",
      "1.5",
      "-1",
      " 5",
      "0x10",
      "1e2",
      "",
      "99999999999999999999999",
      0,
      1.5,
    ]) {
      const result = v.safeParse(v.object({ limit: PageLimit }), { limit: input });
      expect(result.success).toBe(false);
      if (!result.success)
        expect(fieldIssues(result.issues)).toEqual([{ path: "limit", message: "must be 1 to 100" }]);
    }
  });
});
