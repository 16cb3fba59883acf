// README.md's table of settings is what the code reads: every variable the parser knows, with its default, and nothing
// the code never reads.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { envReader, otlpSignalUrl } from "../telemetry/otlp-env.ts";
import { ConfigSchema } from "./index.ts";

const root = join(import.meta.dir, "../..");

/** The rows of README.md's "Configuration" table: each row's variables, and its default column. */
function documentedRows(): Array<{ names: string[]; defaults: string }> {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Configuration"), readme.indexOf("\n## Test it"));
  const table = section.slice(section.indexOf("| variable | meaning | default |"));
  return table
    .slice(0, table.indexOf("\n\n"))
    .split("\n")
    .slice(2)
    .map((row) => {
      const cells = row.split(" | ");
      const names = [...(cells[0] ?? "").matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] as string);
      return { names, defaults: (cells.at(-1) ?? "").replace(/\s*\|\s*$/, "") };
    });
}

const rows = documentedRows();
const documented = new Set(rows.flatMap((row) => row.names));
const entries = ConfigSchema.entries as Record<string, { default?: unknown }>;

test("every variable the config parser knows is in README.md's table", () => {
  expect(rows.length).toBeGreaterThan(40);
  expect(Object.keys(entries).filter((name) => !documented.has(name))).toEqual([]);
});

test("each documented default is the parser's", () => {
  const wrong: string[] = [];
  for (const [name, schema] of Object.entries(entries)) {
    // An empty default is a list left empty, which the table words ("none", "no CORS").
    if (typeof schema.default !== "string" || schema.default === "") continue;
    const row = rows.find((r) => r.names.includes(name));
    if (row && !row.defaults.includes(`\`${schema.default}\``))
      wrong.push(`${name}: the parser's default is ${schema.default}, the table says ${row.defaults}`);
  }
  expect(wrong).toEqual([]);
});

test("every documented variable is read: by the parser, or by name in the node's or the Worker's code", async () => {
  const sources: string[] = [];
  for (const dir of ["shared", "actors", "edge", "deploy"]) {
    for await (const file of new Bun.Glob("**/*.{ts,tsx}").scan(join(root, dir))) {
      if (!/\.test\.tsx?$/.test(file)) sources.push(readFileSync(join(root, dir, file), "utf8"));
    }
  }
  const code = sources.join("\n");
  // OTel's per-signal endpoints are named from the signal (otlp-env.ts): read, though no file spells them.
  const perSignal = (name: string) =>
    (["traces", "metrics"] as const).some(
      (signal) => otlpSignalUrl(envReader({ [name]: "http://127.0.0.1:4318/x" }), signal) !== undefined,
    );
  const unread = [...documented].filter(
    (name) => !(name in entries) && !code.includes(`"${name}"`) && !perSignal(name),
  );
  expect(unread).toEqual([]);
});
