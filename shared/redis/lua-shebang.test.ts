// withoutUpstashOnlyFlags(): only Upstash's `allow-key-locking` is dropped from a script's shebang.
import { expect, test } from "bun:test";
import { withoutUpstashOnlyFlags } from "./lua-shebang.ts";

test("drops allow-key-locking and keeps the rest", () => {
  expect(withoutUpstashOnlyFlags("#!lua flags=allow-key-locking\nreturn 1")).toBe("#!lua flags=\nreturn 1");
  expect(withoutUpstashOnlyFlags("#!lua flags=no-writes,allow-key-locking\nreturn 1")).toBe(
    "#!lua flags=no-writes\nreturn 1",
  );
});

test("leaves other scripts untouched", () => {
  for (const script of [
    "return 1",
    "#!lua\nreturn 1",
    "#!lua flags=no-writes\nreturn 1",
    "-- allow-key-locking",
  ]) {
    expect(withoutUpstashOnlyFlags(script)).toBe(script);
  }
});
