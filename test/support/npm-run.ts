// Runs an npm script of the repo as a user would (`npm run -s <script> …`) and collects what it printed.
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");

/** `npm run -s ...args` in the repo's root, with `extra` over this process's environment; waits for its exit. */
export async function npmRun(
  extra: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn(["npm", "run", "-s", ...args], {
    cwd: root,
    env: { ...process.env, ...extra },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}
