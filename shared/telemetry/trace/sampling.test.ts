// Head sampling of reads: a share, or a rate (a token bucket on an injected clock).
import { describe, expect, test } from "bun:test";
import { isReadMethod, parseTraceSampling, TraceSampler } from "./sampling.ts";

describe("read sampling", () => {
  test("reads are GET, HEAD and OPTIONS", () => {
    expect(["GET", "HEAD", "OPTIONS"].every(isReadMethod)).toBe(true);
    expect(["POST", "PUT", "PATCH", "DELETE"].some(isReadMethod)).toBe(false);
  });

  test("a share from 0 to 1 or a rate", () => {
    expect(parseTraceSampling("0.1")).toEqual({ ratio: 0.1 });
    expect(parseTraceSampling("1")).toEqual({ ratio: 1 });
    expect(parseTraceSampling("10/s")).toEqual({ perSecond: 10 });
    for (const bad of ["", "1.5", "-1", "ten", "10/min"]) expect(parseTraceSampling(bad)).toBeUndefined();
  });

  test("a share keeps about that share; 0 none, 1 all", () => {
    const count = (ratio: number) => {
      const sampler = new TraceSampler({ ratio });
      return Array.from({ length: 4000 }, () => sampler.keep()).filter(Boolean).length;
    };
    expect(count(0)).toBe(0);
    expect(count(1)).toBe(4000);
    expect(count(0.1)).toBeWithin(250, 550);
  });

  test("a rate keeps every read while they are fewer, a second's worth in a burst, then what the clock refills", () => {
    let now = 0;
    const sampler = new TraceSampler({ perSecond: 20 }, () => now);
    const burst = Array.from({ length: 50 }, () => sampler.keep());
    expect(burst.slice(0, 20).every(Boolean)).toBe(true);
    expect(burst.slice(20).some(Boolean)).toBe(false);
    now += 250;
    expect(Array.from({ length: 50 }, () => sampler.keep()).filter(Boolean).length).toBe(5);
    // Below the rate, every read.
    for (let i = 0; i < 100; i++) {
      now += 100;
      expect(sampler.keep()).toBe(true);
    }
    expect(new TraceSampler({ perSecond: 0 }, () => now).keep()).toBe(false);
  });
});
