// Asserting a runtime's case results from Bun: every suite present, every case passed, failures spelled out.
import { expect } from "bun:test";
import { suites } from "./cases.ts";
import type { CaseResult } from "./check.ts";

export function expectAllPassed(runtime: string, results: CaseResult[]): void {
  const expected = Object.entries(suites).flatMap(([suite, cases]) =>
    cases.map((entry) => `${suite} / ${entry.name}`),
  );
  expect(results.map((result) => `${result.suite} / ${result.name}`)).toEqual(expected);
  const failed = results
    .filter((result) => !result.ok)
    .map((result) => `${result.suite} / ${result.name}: ${result.error}`);
  expect(failed, `${runtime}: failed cases`).toEqual([]);
}
