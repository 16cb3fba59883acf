// Registers portable cases with bun:test, so Bun runs exactly what workerd and Deno run.
import { describe, test } from "bun:test";
import type { Case } from "./check.ts";

export function bunCases(suite: string, cases: Case[]): void {
  describe(suite, () => {
    for (const entry of cases) test(entry.name, () => entry.run());
  });
}
