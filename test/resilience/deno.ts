// Runs every resilience case under Deno and prints the results as JSON (test/resilience/deno.test.ts reads it).
import { suites } from "./cases.ts";
import { runCases } from "./check.ts";

console.log(JSON.stringify(await runCases(suites)));
