// defineActor refuses malformed definitions: bad type names, missing handlers, missing migrations.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { defineActor } from "./define.ts";

const base = {
  state: v.object({ n: v.number() }),
  initial: () => ({ n: 0 }),
  messages: { Bump: v.object({}) },
  handlers: { Bump: () => undefined },
};

describe("defineActor", () => {
  test("rejects a type that is not a lowercase slug", () => {
    expect(() => defineActor({ ...base, type: "Order" })).toThrow("must match");
    expect(() => defineActor({ ...base, type: "a/b" })).toThrow("must match");
  });

  test("rejects a message without a handler", () => {
    expect(() =>
      defineActor({ ...base, type: "x", messages: { Bump: v.object({}), Other: v.object({}) } } as never),
    ).toThrow('no handler for message "Other"');
  });

  test("requires a migration for every version step", () => {
    expect(() => defineActor({ ...base, type: "x", version: 3, migrations: { 2: (s) => s } })).toThrow(
      "missing migration to version 3",
    );
    expect(defineActor({ ...base, type: "x", version: 2, migrations: { 2: (s) => s } }).version).toBe(2);
  });
});
