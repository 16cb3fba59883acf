// The offline backup reads its archive back before keeping it: a damaged one is refused and nothing is left behind.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { Database } from "bun:sqlite";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../../test/broker/helpers.ts";
import { backup } from "./backup.ts";
import { npmRun as run } from "../../test/support/npm-run.ts";

const root = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "edgewise-backup-check-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const openDb = (path: string) => openBunSqlite(path, "NORMAL");

/** A small data dir of its own: a secret, a SQLite file, `size` random bytes in a tree (they do not compress). */
function dataDir(name: string, size = 300_000): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "pglite", "base"), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "jwt-secret"), crypto.randomUUID(), { mode: 0o600 });
  writeFileSync(join(dir, "pglite", "base", "1"), randomBytes(size), { mode: 0o600 });
  const actors = new Database(join(dir, "actors.db"));
  actors.exec("CREATE TABLE actor_state (actor TEXT, state TEXT)");
  actors.close();
  return dir;
}

const emptyDir = (name: string) => {
  const dir = join(work, name);
  mkdirSync(dir);
  return dir;
};

describe("npm run backup checks its archive before it keeps it", () => {
  test("a good backup says it was checked, with how many files, leaves nothing else, and restores", async () => {
    const source = dataDir("good");
    const out = emptyDir("good-out");
    const archive = join(out, "good.tar.gz");
    const made = await run({}, "backup", "--", "--data-dir", source, "--out", archive);
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    expect(made.stdout).toContain("(3 files, checked, mode 0600)");
    // No temporary archive nor check directory left beside it.
    expect(readdirSync(out)).toEqual(["good.tar.gz"]);
    const target = join(work, "good-restored");
    const restored = await run({}, "restore", "--", archive, "--data-dir", target);
    expect(restored.code).toBe(0);
    for (const file of ["jwt-secret", "pglite/base/1", "actors.db"])
      expect(readFileSync(join(target, file)).equals(readFileSync(join(source, file)))).toBe(true);
  }, 30_000);

  // The damage is done by a test-only parameter of backup() (`beforeCheck`), on the real file it wrote, between its
  // fsync and the check: a write that goes wrong unnoticed cannot be caused from outside (a full tmpfs fails the
  // write itself, which the writer already reports), and the CLI never sets it.
  const damage: Record<string, (archive: string) => void> = {
    // A full disk the writer did not notice: the tail never reached it.
    "its tail lost": (archive) => truncateSync(archive, Math.floor(readFileSync(archive).length / 2)),
    // Two parts of the gzip stream swapped, as the re-entrant Gzip.write once wrote them.
    "two parts swapped": (archive) => {
      const bytes = readFileSync(archive);
      const [a, b] = [bytes.subarray(65_536, 81_920), bytes.subarray(131_072, 147_456)];
      writeFileSync(
        archive,
        Buffer.concat([
          bytes.subarray(0, 65_536),
          b,
          bytes.subarray(81_920, 131_072),
          a,
          bytes.subarray(147_456),
        ]),
      );
    },
    // A byte of a file changed in the tar, in a gzip stream that is itself whole: only the checksums see it.
    "a file's byte changed in a whole gzip stream": (archive) => {
      const tar = gunzipSync(readFileSync(archive));
      const at = tar.indexOf(Buffer.from("CREATE TABLE actor_state"));
      tar[at] = (tar[at] as number) ^ 1;
      writeFileSync(archive, gzipSync(tar));
    },
  };

  test("an archive damaged between writing and checking is refused, and nothing is left", async () => {
    const source = dataDir("damaged");
    // Its lock files stay, as every backup leaves them (a node takes them over).
    const data = () =>
      readdirSync(source)
        .filter((name) => !name.includes(".lock"))
        .sort();
    const before = data();
    const found: Record<string, string> = {};
    for (const [index, [kind, harm]] of Object.entries(damage).entries()) {
      const out = emptyDir(`damaged-out-${index}`);
      let damaged = "";
      const refused = await backup({
        dataDir: source,
        out: join(out, "backup.tar.gz"),
        openDb,
        beforeCheck: (archive) => {
          damaged = archive;
          harm(archive);
        },
      }).then(
        () => "kept",
        (error: Error) => error.message,
      );
      found[kind] = refused;
      expect({ kind, damaged: damaged.startsWith(join(out, ".backup.tar.gz.partial-")) }).toEqual({
        kind,
        damaged: true,
      });
      expect({ kind, refused }).toEqual({
        kind,
        refused: expect.stringContaining("the archive just written failed the check a restore makes"),
      });
      expect(refused).toContain("nothing was kept");
      // Neither the archive, nor its temporary name, nor the directory it was checked in.
      expect({ kind, left: readdirSync(out) }).toEqual({ kind, left: [] });
    }
    expect(found["a file's byte changed in a whole gzip stream"]).toContain(
      "actors.db does not match its checksum",
    );
    // The data dir is as it was, its locks released: the next backup, undamaged, is kept.
    expect(data()).toEqual(before);
    const out = emptyDir("damaged-out-again");
    const again = await backup({ dataDir: source, out: join(out, "backup.tar.gz"), openDb });
    expect(again.entries.filter((entry) => entry.type === "file")).toHaveLength(3);
    expect(readdirSync(out)).toEqual(["backup.tar.gz"]);
  }, 30_000);

  // A tmpfs of its own, in a user and mount namespace (unshare -rm): skipped where the kernel or container refuses it.
  const mountPoint = join(work, "probe-mount");
  mkdirSync(mountPoint);
  const tmpfs =
    Bun.which("unshare") !== null &&
    Bun.spawnSync(["unshare", "-rm", "sh", "-c", `mount -t tmpfs -o size=64k tmpfs ${mountPoint}`])
      .exitCode === 0;
  test.skipIf(!tmpfs)(
    "a disk with room for the archive but not for its check: refused with the reason, and nothing is left",
    () => {
      const source = dataDir("roomless", 1_000_000);
      const disk = emptyDir("roomless-disk");
      const archive = join(disk, "backup.tar.gz");
      // 1.6 MB: the archive (1 MB of random bytes, which do not compress) fits, its extracted copy beside it does not.
      const script = [
        `mount -t tmpfs -o size=1600k tmpfs ${disk} || exit 99`,
        `${process.execPath} deploy/backup/main.ts backup --data-dir ${source} --out ${archive}`,
        'echo "exit $?"',
        `ls -A ${disk}`,
      ].join("\n");
      const ran = Bun.spawnSync(["unshare", "-rm", "sh", "-c", script], { cwd: root });
      expect(ran.stdout.toString().trim()).toBe("exit 1");
      expect(ran.stderr.toString()).toContain(
        `[backup] refused: no room in ${disk} to check the archive: it is extracted there whole to be checked`,
      );
      expect(ran.stderr.toString()).toContain("nothing was kept");
    },
    30_000,
  );

  test("with DATABASE_URL it names the schema to pg_dump, and the command it prints dumps it", async () => {
    const schema = uniqueSchema("backup_dump");
    await createSchema(schema);
    try {
      const psql = Bun.spawnSync([
        "psql",
        "-q",
        TEST_DATABASE_URL,
        "-c",
        `CREATE TABLE ${schema}.orders_read (id text)`,
      ]);
      expect(psql.stderr.toString()).toBe("");
      // A gateway's data dir (no actors.db): no lease to take, so the password here is never tried, and never shown.
      const source = emptyDir("gateway");
      writeFileSync(join(source, "jwt-secret"), crypto.randomUUID(), { mode: 0o600 });
      const url = `${TEST_DATABASE_URL.replace("postgres@", "postgres:hunter2secret@")}?search_path=${schema}&prepare=false`;
      const made = await run(
        { DATABASE_URL: url },
        "backup",
        "--",
        "--data-dir",
        source,
        "--out",
        join(work, "gateway.tar.gz"),
      );
      expect(made.code).toBe(0);
      expect(made.stdout).not.toContain("hunter2secret");
      expect(made.stdout).toContain(`not the node's Postgres tables (schema ${schema})`);
      const line = made.stdout.split("\n").find((l) => l.includes("pg_dump ")) ?? "";
      expect(line).toContain("before the node starts again");
      const args = line
        .slice(line.indexOf("pg_dump "))
        .split(" ")
        .filter((a) => a.startsWith("--format") || a.startsWith("--schema"));
      expect(args).toEqual(["--format=custom", `--schema=${schema}`]);
      // As it says: the URL as postgres.js takes it is refused, without those parameters it dumps the schema.
      const dump = join(work, "gateway.pgdump");
      const refused = Bun.spawnSync(["pg_dump", ...args, `--file=${dump}`, url]);
      expect(refused.stderr.toString()).toContain('invalid URI query parameter: "search_path"');
      const dumped = Bun.spawnSync(["pg_dump", ...args, `--file=${dump}`, url.slice(0, url.indexOf("?"))]);
      expect(dumped.stderr.toString()).toBe("");
      const listed = Bun.spawnSync(["pg_restore", "--list", dump]).stdout.toString();
      expect(listed).toContain(`TABLE ${schema} orders_read`);
    } finally {
      await dropSchema(schema);
    }
  }, 30_000);
});
