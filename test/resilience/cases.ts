// Every portable resilience case, by suite: Bun runs them beside the source, workerd and Deno in their runtime.
import type { Case } from "./check.ts";
import { bulkheadCases } from "./cases/bulkhead.ts";
import { closedCases } from "./cases/breaker-closed.ts";
import { recoveryCases } from "./cases/breaker-recovery.ts";
import { policyCases } from "./cases/policy.ts";
import { retryCases } from "./cases/retry.ts";
import { timeoutCases } from "./cases/timeout.ts";

export const suites = {
  "breaker: closed": closedCases,
  "breaker: open and recovery": recoveryCases,
  timeout: timeoutCases,
  retry: retryCases,
  bulkhead: bulkheadCases,
  policy: policyCases,
} satisfies Record<string, Case[]>;
