// npm run restore given a hostile archive: nothing is written outside the target, and the target is left as it was.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Header, type HeaderData } from "tar";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { ArchiveError } from "./manifest.ts";
import { restore } from "./restore.ts";

const work = mkdtempSync(join(tmpdir(), "edgewise-hostile-archive-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const outside = join(work, "outside");
mkdirSync(outside);

type Entry = {
  path: string;
  type?: HeaderData["type"];
  linkpath?: string;
  body?: string;
  /** The size its header declares, when not its body's. */
  size?: number;
  pax?: Record<string, string>;
};

/** A gzipped tar with exactly these entries, as a hand-made archive would hold them (no manifest unless listed). */
function archive(name: string, entries: Entry[]): string {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? "");
    if (entry.pax) {
      // A PAX extended header whose `path` overrides the plain header's name.
      const records = Object.entries(entry.pax)
        .map(([key, value]) => {
          const text = ` ${key}=${value}\n`;
          let length = text.length + 1;
          while (`${length}${text}`.length !== length) length++;
          return `${length}${text}`;
        })
        .join("");
      blocks.push(...file({ path: "PaxHeader/x", type: "ExtendedHeader" }, Buffer.from(records)));
    }
    blocks.push(...file(entry, body));
  }
  blocks.push(Buffer.alloc(1024));
  const path = join(work, `${name}.tar.gz`);
  writeFileSync(path, gzipSync(Buffer.concat(blocks)));
  return path;
}

function file(entry: Entry, body: Buffer): Buffer[] {
  const type = entry.type ?? "File";
  const header = new Header({
    path: entry.path,
    type,
    size: entry.size ?? (type === "File" || type === "ExtendedHeader" ? body.length : 0),
    mode: 0o644,
    mtime: new Date(0),
    ...(entry.linkpath ? { linkpath: entry.linkpath } : {}),
  });
  header.encode();
  const padded = Buffer.alloc(Math.ceil(body.length / 512) * 512);
  body.copy(padded);
  return [header.block as Buffer, padded];
}

const cases: Array<[string, Entry[], RegExp]> = [
  ["a path climbing out", [{ path: "../escaped", body: "x" }], /unsafe path/],
  ["a path climbing out from a directory", [{ path: "pglite/../../escaped", body: "x" }], /unsafe path/],
  ["an absolute path", [{ path: join(outside, "escaped"), body: "x" }], /unsafe path/],
  ["a PAX path climbing out", [{ path: "innocent", body: "x", pax: { path: "../escaped" } }], /unsafe path/],
  [
    "a symlink, then a file through it",
    [
      { path: "certs", type: "SymbolicLink", linkpath: outside },
      { path: "certs/escaped", body: "x" },
    ],
    /type SymbolicLink/,
  ],
  [
    "a hard link to a file outside",
    [{ path: "jwt-secret", type: "Link", linkpath: join(outside, "victim") }],
    /type Link/,
  ],
  ["a character device", [{ path: "jwt-secret", type: "CharacterDevice" }], /type CharacterDevice/],
  ["a FIFO", [{ path: "jwt-secret", type: "FIFO" }], /type FIFO/],
];

for (const [name, entries, why] of cases) {
  test(`refused: ${name}; nothing is written outside, and the target is left empty`, async () => {
    writeFileSync(join(outside, "victim"), "mine");
    const target = join(work, `target-${name.replaceAll(" ", "-")}`);
    mkdirSync(target);
    const refused = restore({
      archive: archive(name.replaceAll(" ", "-"), entries),
      dataDir: target,
      openDb: (path) => openBunSqlite(path, "NORMAL"),
    });
    await expect(refused).rejects.toBeInstanceOf(ArchiveError);
    await expect(refused).rejects.toThrow(why);
    expect(readdirSync(target)).toEqual([]);
    expect(readdirSync(outside)).toEqual(["victim"]);
    expect(existsSync(join(work, "escaped"))).toBe(false);
  });
}

// Before, the size was known only from the manifest, which comes last: a few KB of gzip holding gigabytes of zeros
// filled the target's file system (200 KB to 200 MB on a 32 MB tmpfs) before the restore failed with ENOSPC.
test("refused before it is written: files that come to more than the file system has free", async () => {
  const target = join(work, "target-too-large");
  mkdirSync(target);
  const refused = restore({
    // A petabyte declared, a few bytes present: the header alone is refused, before anything is written.
    archive: archive("too-large", [
      { path: "jwt-secret", body: "x" },
      { path: "pglite/base/1", body: "x".repeat(1000), size: 2 ** 50 },
    ]),
    dataDir: target,
    openDb: (path) => openBunSqlite(path, "NORMAL"),
  });
  await expect(refused).rejects.toThrow(
    /the archive's files need more room than the target's file system can spare \(\d+ MiB free; a restore leaves 64 MiB free for the node\)/,
  );
  expect(readdirSync(target)).toEqual([]);
});
