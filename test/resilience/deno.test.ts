// The resilience cases under Deno: `deno run` on a script that prints their results; Bun checks each passed.
import { test } from "bun:test";
import { join, resolve } from "node:path";
import type { CaseResult } from "./check.ts";
import { expectAllPassed } from "./results.ts";

const root = resolve(import.meta.dir, "../..");

test("every resilience case passes under Deno", async () => {
  // No permissions at all: shared/resilience needs neither network, files nor environment.
  const child = Bun.spawn(
    [join(root, "node_modules/.bin/deno"), "run", "--no-lock", join(import.meta.dir, "deno.ts")],
    {
      cwd: root,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (code !== 0) throw new Error(`deno exited with ${code}:\n${stderr.slice(-2_000)}`);
  expectAllPassed("deno", JSON.parse(stdout) as CaseResult[]);
}, 60_000);
