// Registers the conformance cases with bun:test for one driver.
import { afterAll, beforeAll, describe, test } from "bun:test";
import { type ConformanceDriver, conformanceCases } from "./cases.ts";

export function runConformance(
  name: string,
  start: () => Promise<ConformanceDriver>,
  timeoutMs = 60_000,
): void {
  describe(`conformance: ${name}`, () => {
    let driver: ConformanceDriver;
    beforeAll(async () => {
      driver = await start();
    }, 120_000);
    afterAll(async () => {
      await driver?.close();
    });
    conformanceCases.forEach((item, index) => {
      test(
        `[${item.semantic}] ${item.name}`,
        () => item.run(driver, `c${index}-${Date.now().toString(36)}`),
        timeoutMs,
      );
    });
  });
}
