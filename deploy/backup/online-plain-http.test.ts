// npm run backup -- --online over plain http to another machine warns, before the request, that secrets cross in clear.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { npmRun } from "../../test/support/npm-run.ts";

const work = mkdtempSync(join(tmpdir(), "edgewise-online-http-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The command against `url` (a TEST-NET address nothing answers at: it fails after --timeout), as an operator runs it. */
const backupFrom = (url: string, name: string) =>
  npmRun(
    { EDGEWISE_TOKEN: "an-admin-token" },
    "backup",
    "--",
    "--online",
    "--url",
    url,
    "--out",
    join(work, `${name}.tar.gz`),
    "--timeout",
    "1s",
  );

// Before, the command sent the admin token and took the archive over http:// to any host without a word.
test("http:// to another machine: a warning on stderr before the request, naming what crosses in clear", async () => {
  const result = await backupFrom("http://192.0.2.1:8787", "plain");
  expect(result.code).toBe(1);
  const [first] = result.stderr.split("\n");
  expect(first).toContain("[backup] warning: http://192.0.2.1:8787 is plain http to another machine");
  expect(first).toContain("EDGEWISE_TOKEN (an admin credential) and the archive (every secret of the node)");
  expect(result.stderr).not.toContain("an-admin-token");
}, 30_000);

test("https://, or http:// to this machine: no warning", async () => {
  for (const [url, name] of [
    ["https://192.0.2.1:8787", "tls"],
    ["http://127.0.0.1:9", "loopback"],
    ["http://[::1]:9", "loopback6"],
    ["http://localhost:9", "localhost"],
  ] as const) {
    const result = await backupFrom(url, name);
    expect({ url, code: result.code, warned: result.stderr.includes("warning") }).toEqual({
      url,
      code: 1,
      warned: false,
    });
  }
}, 60_000);
