// Turns the chaos measurements (one JSON line per scenario run) into a Markdown table for the docs:
// `npx bun test/chaos/table.ts [results.jsonl]`; the latest run of each scenario wins. With `--ci`, one line per
// scenario and its evidence, for the end of CI's output.
import { readFileSync } from "node:fs";
import { RESULTS_FILE } from "./scenario.ts";

const args = process.argv.slice(2);
const ci = args.includes("--ci");
const file = args.find((arg) => arg !== "--ci") ?? RESULTS_FILE;
const rows = new Map<string, Record<string, unknown>>();
for (const line of readFileSync(file, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const row = JSON.parse(line) as Record<string, unknown>;
  rows.set(String(row.scenario), row);
}

const ms = (value: unknown) => (typeof value === "number" ? `${(value / 1000).toFixed(1)} s` : "–");
const columns: Array<[string, (row: Record<string, unknown>) => string]> = [
  ["scenario", (r) => String(r.scenario)],
  ["fault", (r) => `${r.faultSeconds} s`],
  ["requests", (r) => String(r.requests)],
  ["orders accepted", (r) => `${r.ordersAccepted}/${r.ordersPlaced}`],
  [
    "detect: request / readyz / log",
    (r) => [r.detectMs, r.readyzDetectMs, r.logDetectMs].map(ms).join(" / "),
  ],
  ["time to recover", (r) => ms(r.recoverMs)],
  ["failed fast", (r) => String(r.failedFast)],
  ["504", (r) => String(r.timeouts504)],
  ["hung", (r) => String(r.hung)],
  ["/readyz hung", (r) => String(r.readyzHung)],
  ["p99 during", (r) => `${(r.latencyDuring as { p99: number | null })?.p99 ?? "–"} ms`],
  ["orders final after", (r) => ms(r.ordersFinalMs)],
  ["drained after", (r) => ms(r.drainMs)],
  ["delivery retries", (r) => String(r.deliveryRetries)],
  ["lost", (r) => String(r.lost)],
  ["invariant violations", (r) => String(r.invariantViolations)],
];
if (ci) {
  for (const row of rows.values()) {
    console.log(
      `[chaos] ${row.scenario}: ${row.drained ? "drained" : "NOT drained"} after ${ms(row.drainMs)}, ` +
        `${row.ordersStuck} stuck, ${row.lost} lost, ${row.invariantViolations} invariant violations`,
    );
    for (const line of (row.evidence as string[] | undefined) ?? []) console.log(`[chaos]   ${line}`);
  }
} else {
  console.log(`| ${columns.map(([name]) => name).join(" | ")} |`);
  console.log(`| ${columns.map(() => "---").join(" | ")} |`);
  for (const row of rows.values()) console.log(`| ${columns.map(([, cell]) => cell(row)).join(" | ")} |`);
}
