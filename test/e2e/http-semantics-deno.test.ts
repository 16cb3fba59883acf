// HTTP semantics a strict client relies on (test/e2e/http-semantics.ts), against `npm run start:deno`'s entry.
import { afterAll, beforeAll, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { headAnswersAreDated, trailingSlashRedirects, unreadableBodiesRefused } from "./http-semantics.ts";
import { denoEntryCommand, freePort, type Started, startProcess } from "./process.ts";

const root = resolve(import.meta.dir, "../..");
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-http-semantics-deno-"));
let server: Started;
let base = "";
let auth: Record<string, string>;

beforeAll(async () => {
  let port = freePort();
  const env = () => ({
    PORT: String(port),
    HOST: "127.0.0.1",
    EDGEWISE_DATA_DIR: dataDir,
    EDGEWISE_TRACING: "off",
  });
  server = await startProcess(denoEntryCommand(root), {
    cwd: root,
    env: env(),
    pattern: /admin token[^:]*: (\S+)/,
    again: () => {
      port = freePort();
      return { command: denoEntryCommand(root), env: env() };
    },
  });
  base = `http://127.0.0.1:${port}`;
  auth = { authorization: `Bearer ${server.match}` };
}, 90_000);

afterAll(async () => {
  await server?.kill("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
});

test("a read of a path with a trailing slash is redirected (308) to the path; a write's 404 names it", () =>
  trailingSlashRedirects(base, auth));

test("a HEAD answer carries Date, as its GET does", () => headAnswersAreDated(base, auth));

test("a body it cannot read as sent is refused, and writes nothing", () =>
  unreadableBodiesRefused(base, auth));
