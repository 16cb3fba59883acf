// A file made at --out while a backup runs is never replaced: offline, online, and where hard links are missing.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { edgewiseRejection } from "../../test/support/errors.ts";
import { backup } from "./backup.ts";
import { placeNew } from "./keep.ts";
import { onlineBackup } from "./online-client.ts";
import { restore } from "./restore.ts";

const work = mkdtempSync(join(tmpdir(), "edgewise-backup-keep-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const openDb = (path: string) => openBunSqlite(path, "NORMAL");

/** A small embedded node's data dir: a secret and a PGlite file. */
function dataDir(name: string): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "pglite"), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "jwt-secret"), crypto.randomUUID(), { mode: 0o600 });
  writeFileSync(join(dir, "pglite", "PG_VERSION"), "17\n", { mode: 0o600 });
  return dir;
}

const outDir = (name: string) => {
  const dir = join(work, name);
  mkdirSync(dir);
  return dir;
};

/** The one archive kept beside `out`, named by the refusal; nothing else is left there (no check directory). */
function keptArchive(message: string, dir: string): string {
  const [kept, ...others] = readdirSync(dir).filter((name) => name !== "backup.tar.gz");
  expect(others).toEqual([]);
  expect(kept).toStartWith(".backup.tar.gz.partial-");
  const path = join(dir, kept as string);
  expect(message).toContain(`the checked archive is kept at ${path}`);
  return path;
}

test("offline: a file made at --out while the archive was written is left as it was, and the archive is kept beside it", async () => {
  const source = dataDir("offline");
  const dir = outDir("offline-out");
  const out = join(dir, "backup.tar.gz");
  const error = await edgewiseRejection(
    backup({ dataDir: source, out, openDb, beforeCheck: () => writeFileSync(out, "another backup's") }),
  );
  expect(error.code).toBe("conflict");
  expect(error.message).toContain(
    `${out} appeared while the backup was written; backups are never overwritten`,
  );
  expect(readFileSync(out, "utf8")).toBe("another backup's");
  // The kept archive is the checked one: it restores.
  const kept = keptArchive(error.message, dir);
  const target = join(work, "offline-restored");
  await restore({ archive: kept, dataDir: target, openDb });
  expect(readFileSync(join(target, "jwt-secret"), "utf8")).toBe(
    readFileSync(join(source, "jwt-secret"), "utf8"),
  );
});

test("online: a file made at --out while the node answered is left as it was, and the archive is kept beside it", async () => {
  const source = dataDir("online");
  const archive = join(outDir("online-made"), "node.tar.gz");
  await backup({ dataDir: source, out: archive, openDb });
  const dir = outDir("online-out");
  const out = join(dir, "backup.tar.gz");
  // A stand-in node answering with a good archive; the file at --out is made once the client has checked for it.
  const node = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: () => {
      writeFileSync(out, "another backup's");
      return new Response(readFileSync(archive), { headers: { "content-type": "application/gzip" } });
    },
  });
  try {
    const error = await edgewiseRejection(
      onlineBackup({ url: `http://127.0.0.1:${node.port}`, token: "t", out, timeoutMs: 10_000 }),
    );
    expect(error.code).toBe("conflict");
    expect(error.message).toContain(`${out} appeared while the backup was written`);
    expect(readFileSync(out, "utf8")).toBe("another backup's");
    const kept = keptArchive(error.message, dir);
    await restore({ archive: kept, dataDir: join(work, "online-restored"), openDb });
    expect(readFileSync(join(work, "online-restored", "jwt-secret"), "utf8")).toBe(
      readFileSync(join(source, "jwt-secret"), "utf8"),
    );
  } finally {
    node.stop(true);
  }
});

test("without hard links (link fails EPERM): the name is claimed with O_EXCL, so a file there is still never replaced", () => {
  const dir = outDir("no-links");
  const noLinks = (() => {
    throw Object.assign(new Error("Operation not permitted"), { code: "EPERM" });
  }) as unknown as Parameters<typeof placeNew>[2];
  const partial = join(dir, ".a.partial");
  writeFileSync(partial, "checked");
  writeFileSync(join(dir, "taken"), "someone's");
  expect(placeNew(partial, join(dir, "taken"), noLinks)).toBe(false);
  expect(readFileSync(join(dir, "taken"), "utf8")).toBe("someone's");
  expect(readFileSync(partial, "utf8")).toBe("checked");
  expect(placeNew(partial, join(dir, "free"), noLinks)).toBe(true);
  expect(readFileSync(join(dir, "free"), "utf8")).toBe("checked");
  expect(readdirSync(dir).sort()).toEqual(["free", "taken"]);
  // With links, the same: refused over a file, and the partial's one name is `out` once placed.
  writeFileSync(partial, "checked");
  expect(placeNew(partial, join(dir, "taken"))).toBe(false);
  expect(placeNew(partial, join(dir, "linked"))).toBe(true);
  expect(readdirSync(dir).sort()).toEqual(["free", "linked", "taken"]);
});

test("without hard links, a backup killed between claiming --out and the rename leaves a note naming the archive, not an empty file", async () => {
  const dir = outDir("killed-claim");
  const partial = join(dir, ".backup.tar.gz.partial-k");
  const out = join(dir, "backup.tar.gz");
  writeFileSync(partial, "checked");
  // A process of its own, killed (SIGKILL) where its rename would have run.
  const script = join(dir, "..", "killed-claim.ts");
  writeFileSync(
    script,
    `import { placeNew } from ${JSON.stringify(join(import.meta.dir, "keep.ts"))};
const noLinks = () => { throw Object.assign(new Error("Operation not permitted"), { code: "EPERM" }); };
placeNew(process.argv[2], process.argv[3], noLinks, () => process.kill(process.pid, "SIGKILL"));`,
  );
  const child = Bun.spawnSync([process.execPath, script, partial, out], { stdout: "ignore", stderr: "pipe" });
  expect(child.signalCode).toBe("SIGKILL");
  expect(readFileSync(partial, "utf8")).toBe("checked");
  const note = readFileSync(out, "utf8");
  expect(note).toStartWith("edgewise backup: not an archive.");
  expect(note).toContain(partial);
  // A restore of it says what it is and where the archive is, instead of a gzip error.
  const error = await edgewiseRejection(
    restore({ archive: out, dataDir: join(work, "claim-restored"), openDb }),
  );
  expect(error.code).toBe("config.invalid");
  expect(error.message).toContain(`may be at ${partial}`);
});

test("without hard links, a rename that fails removes the claim: nothing is left at --out", () => {
  const dir = outDir("failed-rename");
  const partial = join(dir, ".a.partial");
  writeFileSync(partial, "checked");
  const noLinks = (() => {
    throw Object.assign(new Error("Operation not permitted"), { code: "EPERM" });
  }) as unknown as Parameters<typeof placeNew>[2];
  const busy = (() => {
    throw Object.assign(new Error("Device or resource busy"), { code: "EBUSY" });
  }) as unknown as Parameters<typeof placeNew>[3];
  expect(() => placeNew(partial, join(dir, "out"), noLinks, busy)).toThrow("busy");
  expect(readdirSync(dir)).toEqual([".a.partial"]);
});

test("without hard links, a note that cannot be written (a full disk) removes the claim: no empty file at --out", () => {
  const dir = outDir("failed-note");
  const partial = join(dir, ".a.partial");
  writeFileSync(partial, "checked");
  const noLinks = (() => {
    throw Object.assign(new Error("Operation not permitted"), { code: "EPERM" });
  }) as unknown as Parameters<typeof placeNew>[2];
  const full = () => {
    throw Object.assign(new Error("No space left on device"), { code: "ENOSPC" });
  };
  expect(() => placeNew(partial, join(dir, "out"), noLinks, undefined, full)).toThrow("No space left");
  expect(readdirSync(dir)).toEqual([".a.partial"]);
});
