// retry and backoff under Bun: the portable cases workerd and Deno also run.
import { bunCases } from "../../test/resilience/bun.ts";
import { suites } from "../../test/resilience/cases.ts";

bunCases("retry", suites.retry);
