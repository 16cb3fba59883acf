// Validation failures read plainly: a missing field, an unknown one and a wrong type, with the schema's own words kept.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { fieldIssues, validationError } from "./valibot.ts";

const Body = v.strictObject({
  available: v.pipe(v.number(), v.maxValue(1e9)),
  priceCents: v.pipe(v.number(), v.integer("must be an integer")),
  tags: v.optional(v.pipe(v.array(v.string()), v.minLength(1))),
});
const issuesOf = (input: unknown) => fieldIssues(v.safeParse(Body, input).issues ?? []);

describe("field issues", () => {
  test.each([
    [{ available: 1 }, [{ path: "priceCents", message: "is required" }]],
    [
      { available: 1, priceCents: 2, colour: "red" },
      [{ path: "colour", message: "is not a field here (unknown fields are refused)" }],
    ],
    [{ available: "1", priceCents: 2 }, [{ path: "available", message: "must be a number, not a string" }]],
    [{ available: null, priceCents: 2 }, [{ path: "available", message: "must be a number, not null" }]],
    [
      { available: 1, priceCents: 2, tags: [1] },
      [{ path: "tags.0", message: "must be a string, not a number" }],
    ],
    ["x", [{ path: "", message: "must be an object, not a string" }]],
    [{ available: 1e300, priceCents: 2 }, [{ path: "available", message: "must be at most 1000000000" }]],
    [{ available: 1, priceCents: 2, tags: [] }, [{ path: "tags", message: "length must be at least 1" }]],
    // The schema's own message stays as written.
    [{ available: 1, priceCents: 2.5 }, [{ path: "priceCents", message: "must be an integer" }]],
  ])("%j", (input, expected) => {
    expect(issuesOf(input)).toEqual(expected);
  });

  test("a repeated query parameter is named as such, and no received value is echoed", () => {
    const Query = v.strictObject({ limit: v.optional(v.string()) });
    expect(fieldIssues(v.safeParse(Query, { limit: ["1", "2"] }).issues ?? [])).toEqual([
      { path: "limit", message: "must be a string, not an array (a repeated query parameter?)" },
    ]);
    const secretish = issuesOf({ available: "sk_live_123", priceCents: 1 });
    expect(JSON.stringify(secretish)).not.toContain("sk_live_123");
  });

  test("the error's detail leads with the first field", () => {
    const error = validationError(
      "request.invalid",
      "request body",
      v.safeParse(Body, { available: 1 }).issues ?? [],
    );
    expect(error.message).toBe("request body is invalid (priceCents: is required)");
    expect(error.issues).toEqual([{ path: "priceCents", message: "is required" }]);
  });
});
