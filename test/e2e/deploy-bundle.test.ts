// What `wrangler deploy` would upload: it builds, fits Cloudflare's size limit, and every bound class has a migration.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

const root = resolve(import.meta.dir, "../..");
const outdir = mkdtempSync(join(tmpdir(), "edgewise-deploy-"));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** Workers' limit on the compressed upload on the Free plan (the Paid plan allows 10 MiB). */
const FREE_PLAN_GZIP_BYTES = 3 * 1024 * 1024;

test("wrangler deploy --dry-run builds the Worker, under the Free plan's 3 MiB compressed", async () => {
  const build = Bun.spawn(
    [join(root, "node_modules/.bin/wrangler"), "deploy", "--dry-run", "--outdir", outdir],
    { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, stdout: "pipe", stderr: "pipe" },
  );
  const [code, out, err] = await Promise.all([
    build.exited,
    new Response(build.stdout).text(),
    new Response(build.stderr).text(),
  ]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  expect(out).toContain("--dry-run: exiting now.");

  const bundles = readdirSync(outdir).filter((name) => name.endsWith(".js"));
  expect(bundles).toEqual(["cloudflare.js"]);
  const bundle = readFileSync(join(outdir, "cloudflare.js"));
  expect(gzipSync(bundle).length).toBeLessThan(FREE_PLAN_GZIP_BYTES);
  // Nothing of the embedded stack (PGlite, the local broker and bridge, the Bun host) is in the Worker: esbuild
  // heads each module it bundles with a `// <path>` line.
  const modules =
    bundle.toString("utf8").match(/^\/\/ (?:node_modules|actors|deploy|edge|shared)\/\S+/gm) ?? [];
  expect(modules.length).toBeGreaterThan(100);
  expect(modules.filter((line) => /@electric-sql|^\/\/ deploy\/|actors\/hosts\/local\//.test(line))).toEqual(
    [],
  );
}, 120_000);

test("every Durable Object class bound in wrangler.toml is created by a migration and exported by the entry", async () => {
  const config = Bun.TOML.parse(readFileSync(join(root, "wrangler.toml"), "utf8")) as {
    main: string;
    durable_objects: { bindings: Array<{ class_name: string; script_name?: string }> };
    migrations: Array<{ new_sqlite_classes?: string[]; new_classes?: string[]; deleted_classes?: string[] }>;
  };
  const migrated = new Set<string>();
  for (const step of config.migrations) {
    for (const name of [...(step.new_sqlite_classes ?? []), ...(step.new_classes ?? [])]) migrated.add(name);
    for (const name of step.deleted_classes ?? []) migrated.delete(name);
  }
  const bound = config.durable_objects.bindings.filter((b) => !b.script_name).map((b) => b.class_name);
  expect(bound.filter((name) => !migrated.has(name))).toEqual([]);
  // The entry's exports, as wrangler reads them (the module itself imports cloudflare:workers, so it is not loaded).
  const entry = readFileSync(join(root, config.main), "utf8");
  for (const name of bound) expect(entry).toMatch(new RegExp(`export[^;]*\\b${name}\\b`));
});
