// EDGEWISE_TRACE_SAMPLE_READS, as the node reads it.
import { describe, expect, test } from "bun:test";
import { defaultReadSampling, readSamplingFromEnv } from "./tracing.ts";

describe("EDGEWISE_TRACE_SAMPLE_READS", () => {
  test("defaults to 10 a second; takes a share from 0 to 1 or a rate; refuses anything else, naming the variable", () => {
    expect(readSamplingFromEnv(undefined)).toEqual(defaultReadSampling);
    expect(defaultReadSampling).toEqual({ perSecond: 10 });
    expect(readSamplingFromEnv(" ")).toEqual(defaultReadSampling);
    expect(readSamplingFromEnv("0")).toEqual({ ratio: 0 });
    expect(readSamplingFromEnv("1")).toEqual({ ratio: 1 });
    expect(readSamplingFromEnv("0.25")).toEqual({ ratio: 0.25 });
    expect(readSamplingFromEnv("50/s")).toEqual({ perSecond: 50 });
    expect(readSamplingFromEnv("2.5 / s")).toEqual({ perSecond: 2.5 });
    for (const bad of ["abc", "2", "-0.1", "10%", "NaN", "10/m", "/s"]) {
      expect(() => readSamplingFromEnv(bad)).toThrow(
        "EDGEWISE_TRACE_SAMPLE_READS must be a share of reads from 0 to 1",
      );
    }
  });
});
