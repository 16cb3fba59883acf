// The archive's "postgres" label comes from the data dir (is there a pglite/?), not from the backup's environment.
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { TEST_DATABASE_URL } from "../../test/broker/helpers.ts";
import { edgewiseRejection } from "../../test/support/errors.ts";
import { npmRun as run } from "../../test/support/npm-run.ts";
import { backup } from "./backup.ts";

const work = mkdtempSync(join(tmpdir(), "edgewise-backup-label-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const openDb = (path: string) => openBunSqlite(path, "NORMAL");

/** A stopped node's data dir: a secret and traces.db, and pglite/ when the node ran on its embedded Postgres. */
function dataDir(name: string, embedded: boolean): string {
  const dir = join(work, name);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, "jwt-secret"), crypto.randomUUID(), { mode: 0o600 });
  const traces = new Database(join(dir, "traces.db"));
  traces.exec("CREATE TABLE spans (id TEXT)");
  traces.close();
  if (embedded) {
    mkdirSync(join(dir, "pglite"), { mode: 0o700 });
    writeFileSync(join(dir, "pglite", "PG_VERSION"), "17\n", { mode: 0o600 });
  }
  return dir;
}

test("an embedded node's data dir with a stray DATABASE_URL in the shell: refused, not labelled external", async () => {
  const source = dataDir("embedded", true);
  const out = join(work, "embedded.tar.gz");
  const stray = await run(
    { DATABASE_URL: TEST_DATABASE_URL },
    "backup",
    "--",
    "--data-dir",
    source,
    "--out",
    out,
  );
  expect(stray.code).toBe(1);
  expect(stray.stderr).toContain(
    `[backup] refused: data dir ${source} holds an embedded Postgres (pglite/), but DATABASE_URL is set: if the node ran on its embedded Postgres, unset DATABASE_URL and back up again`,
  );
  expect(stray.stdout).not.toContain("pg_dump");
  expect(existsSync(out)).toBe(false);
  // Without it: embedded, and its restore asks for no dump.
  const made = await run({ DATABASE_URL: "" }, "backup", "--", "--data-dir", source, "--out", out);
  expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: "" });
  expect(made.stdout).not.toContain("pg_dump");
  const restored = await run({}, "restore", "--", out, "--data-dir", join(work, "embedded-restored"));
  expect(restored.code).toBe(0);
  expect(restored.stdout).not.toContain("kept its Postgres elsewhere");
}, 30_000);

test("a data dir without pglite/ is a node's on DATABASE_URL: external, whether DATABASE_URL is set here or not", async () => {
  const source = dataDir("external", false);
  const bare = await backup({ dataDir: source, out: join(work, "external-bare.tar.gz"), openDb });
  expect(bare.postgres).toBe("external");
  const withUrl = await backup({
    dataDir: source,
    out: join(work, "external-url.tar.gz"),
    openDb,
    databaseUrl: TEST_DATABASE_URL,
  });
  expect(withUrl.postgres).toBe("external");
  // The function refuses the stray variable as the command does, and writes nothing.
  const embedded = dataDir("embedded-fn", true);
  const out = join(work, "embedded-fn.tar.gz");
  const error = await edgewiseRejection(
    backup({ dataDir: embedded, out, openDb, databaseUrl: TEST_DATABASE_URL }),
  );
  expect(error.code).toBe("config.invalid");
  expect(existsSync(out)).toBe(false);
  expect((await backup({ dataDir: embedded, out, openDb })).postgres).toBe("embedded");
});
