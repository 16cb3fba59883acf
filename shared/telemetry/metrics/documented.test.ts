// ARCHITECTURE.md's table of instruments is the node's /metrics: every name and label there exists, and vice versa.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EdgewiseMetrics } from "./index.ts";

test("the documented instruments and their labels are exactly the registered ones", () => {
  const doc = readFileSync(join(import.meta.dir, "../../../ARCHITECTURE.md"), "utf8");
  const table = doc.slice(doc.indexOf("| name | type | labels |"));
  const rows = table.slice(0, table.indexOf("\n\n")).split("\n").slice(2);
  const documented = new Map<string, string[]>();
  for (const row of rows) {
    const [, names = "", , labels = ""] = row.split(" | ").length > 1 ? row.trim().split(/\s*\|\s*/) : [];
    // A label is a backticked name outside parentheses (those list its values).
    const labelNames = [...labels.replace(/\([^)]*\)/g, "").matchAll(/`([a-z_]+)`/g)].map(
      (m) => m[1] as string,
    );
    for (const [, name] of names.matchAll(/`([a-z_]+)`/g)) documented.set(name as string, labelNames.sort());
  }
  const metrics = new EdgewiseMetrics({});
  const instruments = (metrics.registry as unknown as { instruments: Map<string, { labelNames: string[] }> })
    .instruments;
  const registered = new Map([...instruments].map(([name, i]) => [name, [...i.labelNames].sort()]));
  expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(registered));
});
