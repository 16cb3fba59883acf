// A data dir that holds another node's or broker's data dir is refused by the backup, not copied past its locks.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { edgewiseRejection } from "../../test/support/errors.ts";
import { lockDataDir } from "../data-dir-lock.ts";
import { backup } from "./backup.ts";

const work = mkdtempSync(join(tmpdir(), "edgewise-backup-nested-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const openDb = (path: string) => openBunSqlite(path, "NORMAL");

// README's split deployment once ran npm run broker on ./.edgewise while the actor host and gateway ran in
// .edgewise/actor-host and .edgewise/gateway: backing up the broker's data dir took in theirs, past their locks.
test.each([
  ["an actor host's, running (its actors lock held)", "actor-host", "actors"],
  ["a broker's or node's, stopped (its pglite lock file left)", "broker", "pglite"],
  ["a split deployment's gateway's (traces.db; a gateway takes no lock)", "gateway", undefined],
] as const)("a data dir holding %s is refused, and nothing is written", async (_, sub, lock) => {
  const dataDir = mkdtempSync(join(work, "outer-"));
  writeFileSync(join(dataDir, "jwt-secret"), "outer");
  mkdirSync(join(dataDir, "certs"));
  writeFileSync(join(dataDir, "certs", "ca.pem"), "pem");
  const inner = join(dataDir, sub);
  mkdirSync(inner);
  const held = lock ? lockDataDir(inner, lock, openDb) : undefined;
  if (lock === "pglite") held?.release();
  if (!lock) writeFileSync(join(inner, "traces.db"), "");
  const out = join(work, `${sub}.tar.gz`);
  try {
    const error = await edgewiseRejection(backup({ dataDir, out, openDb }));
    expect(error.code).toBe("config.invalid");
    expect(error.message).toContain(`${inner} is another data dir`);
    expect(existsSync(out)).toBe(false);
  } finally {
    if (lock === "actors") held?.release();
  }
  // The same data dir without it (certs/ is no data dir) is backed up.
  rmSync(inner, { recursive: true, force: true });
  const manifest = await backup({ dataDir, out, openDb });
  expect(manifest.entries.map((entry) => entry.path)).toEqual(["certs", "certs/ca.pem", "jwt-secret"]);
});
