// Unit tests for the clock port: the system clock's two readings, and how ManualClock models a wall-clock step.
import { describe, expect, test } from "bun:test";
import { ManualClock, systemClock } from "./index.ts";

describe("systemClock", () => {
  test("now() is wall time and monotonic() moves with it while nothing steps", async () => {
    const wall = systemClock.now();
    expect(Math.abs(wall - Date.now())).toBeLessThan(1_000);
    const before = systemClock.monotonic();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(systemClock.monotonic() - before).toBeGreaterThanOrEqual(15);
  });
});

describe("ManualClock", () => {
  test("advance moves both readings; step and set move the wall clock only", () => {
    const clock = new ManualClock(1_000_000);
    clock.advance(500);
    expect([clock.now(), clock.monotonic()]).toEqual([1_000_500, 500]);
    clock.step(-3_600_000);
    expect([clock.now(), clock.monotonic()]).toEqual([1_000_500 - 3_600_000, 500]);
    clock.set(42);
    expect([clock.now(), clock.monotonic()]).toEqual([42, 500]);
  });
});
