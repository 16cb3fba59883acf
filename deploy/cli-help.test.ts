// `npm run <script> -- --help`: every script README.md's "Run it" lists prints its usage and exits 0, starting nothing.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { denoEntryCommand } from "../test/e2e/process.ts";

const root = resolve(import.meta.dir, "..");
const bun = (file: string, ...args: string[]) => [process.execPath, join(root, file), ...args];
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

// As package.json runs them, in the repo's root, with every place they would write pointed into a directory of the
// test's own (`<dir>`). A script that took --help for nothing would listen (and never exit), make its data dir,
// certificates, archive or temporary dir, or refuse the flag with a usage error.
const scripts: Array<[script: string, args: (dir: string) => string[], usage: string]> = [
  ["start", () => bun("edge/entries/bun.ts", "--help"), "usage: npm start"],
  ["start:deno", () => [...denoEntryCommand(root), "--help"], "usage: npm run start:deno"],
  ["token", () => bun("deploy/token.ts", "--help"), "usage: npm run -s token"],
  [
    "backup",
    (dir) => bun("deploy/backup/main.ts", "backup", "--out", join(dir, "a.tar.gz"), "--help"),
    "usage: npm run backup",
  ],
  ["restore", () => bun("deploy/backup/main.ts", "restore", "--help"), "usage: npm run backup"],
  ["demo", () => bun("deploy/demo.ts", "--help"), "usage: npm run demo"],
  ["broker", () => bun("deploy/local/broker/main.ts", "--help"), "usage: npm run broker"],
  ["redis-bridge", () => bun("deploy/local/redis-bridge/main.ts", "-h"), "usage: npm run redis-bridge"],
  [
    "certs",
    (dir) => bun("deploy/local/certs/main.ts", "--out", join(dir, "certs"), "--help"),
    "usage: npm run certs",
  ],
];

test.each(scripts)(
  "npm run %s -- --help prints its usage, exits 0 and starts nothing",
  async (_script, args, usage) => {
    const dir = mkdtempSync(join(tmpdir(), "edgewise-help-"));
    dirs.push(dir);
    const child = Bun.spawn(args(dir), {
      cwd: root,
      // Free ports of their own: were one to start serving, it would take nothing from anyone else.
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? dir,
        TMPDIR: dir,
        EDGEWISE_DATA_DIR: join(dir, "data"),
        PORT: "0",
        QSTASH_PORT: "0",
        REDIS_BRIDGE_PORT: "0",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [code, out, err] = await Promise.all([
      child.exited,
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ]);
    clearTimeout(killer);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(out.startsWith(usage)).toBe(true);
    expect(readdirSync(dir)).toEqual([]); // no data dir, certificates, archive or temporary dir
  },
  30_000,
);
