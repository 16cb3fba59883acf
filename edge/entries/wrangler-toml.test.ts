// wrangler.toml names every variable the Worker reads: an operator deploying it looks there, not in README.md's table.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ConfigSchema } from "../../shared/config/index.ts";

const root = join(import.meta.dir, "../..");
const transpilers = {
  ts: new Bun.Transpiler({ loader: "ts" }),
  tsx: new Bun.Transpiler({ loader: "tsx" }),
};

/** The Worker's own modules: everything edge/entries/cloudflare.ts imports, transitively, by relative path. */
function workerModules(): Map<string, string> {
  const modules = new Map<string, string>();
  const visit = (file: string) => {
    if (modules.has(file)) return;
    const transpiler = file.endsWith(".tsx") ? transpilers.tsx : transpilers.ts;
    const source = readFileSync(file, "utf8");
    // Comments and types dropped: a name mentioned in a doc comment is not read.
    modules.set(file, transpiler.transformSync(source));
    for (const { path } of transpiler.scanImports(source)) {
      if (path.startsWith(".")) visit(resolve(dirname(file), path));
    }
  };
  visit(join(root, "edge/entries/cloudflare.ts"));
  return modules;
}

/** The variables a deployment may set: the config parser's, README.md's table's, and OTel's. */
function knownVariables(): Set<string> {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Configuration"), readme.indexOf("\n## Test it"));
  const table = section.slice(section.indexOf("| variable | meaning | default |"));
  const documented = table
    .slice(0, table.indexOf("\n\n"))
    .split("\n")
    .slice(2)
    .flatMap((row) =>
      [...(row.split(" | ")[0] ?? "").matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] as string),
    );
  return new Set([...Object.keys(ConfigSchema.entries), ...documented]);
}

/** Each variable (or binding) the Worker's modules read, with the first module that reads it. */
function workerReads(): Map<string, string> {
  const known = knownVariables();
  const reads = new Map<string, string>();
  for (const [file, code] of workerModules()) {
    // The parser (shared/config/, its checks of related settings included) names every setting, the node-only ones
    // too; which the Worker uses is what its modules read.
    if (file.startsWith(join(root, "shared/config/"))) continue;
    const where = relative(root, file);
    // Read from the env itself (env.NAME, env["NAME"], reader(env, "NAME")): a variable or a binding, whatever it is.
    for (const m of code.matchAll(
      /\benv\??\.([A-Z][A-Z0-9_]+)|\benv\[\s*"([A-Z][A-Z0-9_]+)"|\(\s*env\s*,\s*"([A-Z][A-Z0-9_]+)"/g,
    ))
      if (!reads.has((m[1] ?? m[2] ?? m[3]) as string)) reads.set((m[1] ?? m[2] ?? m[3]) as string, where);
    // A known variable by name: a parsed config's field (config.NAME) or a string given to a reader.
    for (const m of code.matchAll(/\.([A-Z][A-Z0-9_]+)\b|"([A-Z][A-Z0-9_]+)"/g)) {
      const name = (m[1] ?? m[2]) as string;
      if ((known.has(name) || name.startsWith("OTEL_")) && !reads.has(name)) reads.set(name, where);
    }
    // OTel's per-signal endpoints are named from the signal (otlp-env.ts): no module spells them.
    if (where === "shared/telemetry/otlp-env.ts") {
      for (const signal of ["TRACES", "METRICS"]) reads.set(`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`, where);
    }
  }
  return reads;
}

test("every variable the Worker reads is named in wrangler.toml", () => {
  const reads = workerReads();
  // The scan finds what it should: the queue, auth, the gateway's limits, the traces, a Durable Object's setting.
  for (const name of [
    "QSTASH_URL",
    "JWT_SECRET",
    "RATE_LIMIT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "EDGEWISE_TURN_TIMEOUT",
  ])
    expect(reads.has(name)).toBe(true);
  // Node-only settings the parser knows are not read by the Worker.
  for (const name of ["PORT", "HOST", "EDGEWISE_DATA_DIR", "TLS_CERT_FILE"])
    expect(reads.has(name)).toBe(false);
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  const unnamed = [...reads]
    .filter(([name]) => !new RegExp(`\\b${name}\\b`).test(toml))
    .map(([name, where]) => `${name} (read in ${where})`);
  expect(unnamed).toEqual([]);
});
