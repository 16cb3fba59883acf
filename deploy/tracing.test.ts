// EDGEWISE_TRACE_SAMPLE_READS and EDGEWISE_TRACE_SAMPLE_WRITES, as the node reads them.
import { describe, expect, test } from "bun:test";
import {
  defaultReadSampling,
  defaultWriteSampling,
  readSamplingFromEnv,
  writeSamplingFromEnv,
} from "./tracing.ts";

const settings = [
  {
    name: "EDGEWISE_TRACE_SAMPLE_READS",
    what: "reads",
    read: readSamplingFromEnv,
    fallback: defaultReadSampling,
  },
  {
    name: "EDGEWISE_TRACE_SAMPLE_WRITES",
    what: "writes",
    read: writeSamplingFromEnv,
    fallback: defaultWriteSampling,
  },
];

for (const { name, what, read, fallback } of settings) {
  describe(name, () => {
    test("defaults to 10 a second; takes a share from 0 to 1 or a rate; refuses anything else, naming the variable", () => {
      expect(read(undefined)).toEqual(fallback);
      expect(fallback).toEqual({ perSecond: 10 });
      expect(read(" ")).toEqual(fallback);
      expect(read("0")).toEqual({ ratio: 0 });
      expect(read("1")).toEqual({ ratio: 1 });
      expect(read("0.25")).toEqual({ ratio: 0.25 });
      expect(read("50/s")).toEqual({ perSecond: 50 });
      expect(read("2.5 / s")).toEqual({ perSecond: 2.5 });
      for (const bad of ["abc", "2", "-0.1", "10%", "NaN", "10/m", "/s"]) {
        expect(() => read(bad)).toThrow(`${name} must be a share of ${what} from 0 to 1`);
      }
    });
  });
}
