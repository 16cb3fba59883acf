// The data dir's files are private to the node's user (0600, directories 0700), on Bun and on Deno, even when the
// operator made the data dir itself open to others; files an earlier version left readable are tightened at start.
import { afterAll, expect, test } from "bun:test";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { denoEntryCommand, startProcess } from "../test/e2e/process.ts";
import { startLocalNode } from "../test/support/local-node.ts";
import { createPrivateFile, describeTightened, tightenDataDir } from "./data-dir-files.ts";

const root = resolve(import.meta.dir, "..");
const work = mkdtempSync(join(tmpdir(), "edgewise-data-files-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** An operator's data dir, made by hand: open to everyone (0755). */
function openDir(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  return dir;
}

/** Every path under `dir` whose mode lets another user in, with that mode (symlinks aside). */
function readableByOthers(dir: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const child = join(path, name);
      const stat = lstatSync(child);
      if (stat.isSymbolicLink()) continue;
      if ((stat.mode & 0o077) !== 0) found.push(`${relative(dir, child)} ${(stat.mode & 0o777).toString(8)}`);
      if (stat.isDirectory()) walk(child);
    }
  };
  walk(dir);
  return found;
}

const mode = (path: string) => statSync(path).mode & 0o777;

/** Makes the node's files as an earlier version left them: SQLite's 0644, PGlite's 0666, its directories 0755. */
function asAnEarlierVersionLeftThem(dir: string): void {
  const walk = (path: string, inPGlite: boolean) => {
    for (const name of readdirSync(path)) {
      const child = join(path, name);
      const stat = lstatSync(child);
      if (stat.isDirectory()) {
        chmodSync(child, 0o755);
        walk(child, inPGlite || name === "pglite");
      } else if (!stat.isSymbolicLink()) {
        chmodSync(child, inPGlite ? 0o666 : 0o644);
      }
    }
  };
  walk(dir, false);
}

test("a Bun node's files in an open data dir are 0600 and its directories 0700, while it runs and after", async () => {
  const dataDir = openDir("bun");
  const logged: string[] = [];
  const node = await startLocalNode(dataDir, {}, { tracing: true, log: (line) => logged.push(line) });
  let stopped = false;
  try {
    // Writes: the actors' SQLite (and its WAL), PGlite's tables, the trace store.
    const token = node.adminToken as string;
    const increment = await fetch(`${node.url}/v1/counters/files/increment`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '{"by":1}',
    });
    expect(increment.status).toBe(200);
    const names = readdirSync(dataDir);
    for (const name of ["actors.db", "actors.db-wal", "traces.db", "pglite", "jwt-secret", "actors.lock"]) {
      expect(names).toContain(name);
    }
    expect(readableByOthers(dataDir)).toEqual([]);
    await node.stop();
    stopped = true;
    // PGlite writes files as it closes (its statistics): those too.
    expect(readableByOthers(dataDir)).toEqual([]);
    // The data dir's own mode is the operator's, with a warning; nothing was left to tighten.
    expect(mode(dataDir)).toBe(0o755);
    expect(logged.some((line) => line.includes("could be read by other users"))).toBe(false);
  } finally {
    if (!stopped) await node.stop();
  }
}, 60_000);

test("files an earlier version left readable are made private at start, logged once", async () => {
  const dataDir = openDir("upgraded");
  await (await startLocalNode(dataDir)).stop();
  asAnEarlierVersionLeftThem(dataDir);
  const before = readableByOthers(dataDir);
  expect(before).toContain("actors.db 644");
  expect(before).toContain("pglite 755");
  // What the operator keeps there that is not the node's: left as it is (certificates are meant to be read).
  mkdirSync(join(dataDir, "certs"));
  chmodSync(join(dataDir, "certs"), 0o755);
  writeFileSync(join(dataDir, "certs", "gateway-ca.pem"), "not the node's", { mode: 0o644 });

  const first: string[] = [];
  await (await startLocalNode(dataDir, {}, { log: (line) => first.push(line) })).stop();
  const lines = first.filter((line) => line.includes("could be read by other users"));
  expect(lines).toHaveLength(1);
  const paths = (JSON.parse(lines[0] as string) as { paths: string[] }).paths;
  expect(paths).toContain("actors.db");
  expect(paths.some((path) => /^pglite\/ \(\d+\)$/.test(path))).toBe(true);
  expect(readableByOthers(dataDir).sort()).toEqual(["certs 755", "certs/gateway-ca.pem 644"]);

  const second: string[] = [];
  await (await startLocalNode(dataDir, {}, { log: (line) => second.push(line) })).stop();
  expect(second.filter((line) => line.includes("could be read by other users"))).toEqual([]);
}, 60_000);

test("tightening: files and the node's trees lose group and other bits; symlinks and other dirs are left", () => {
  const dataDir = openDir("unit");
  writeFileSync(join(dataDir, "actors.db"), "", { mode: 0o644 });
  writeFileSync(join(dataDir, "jwt-secret"), "", { mode: 0o600 });
  mkdirSync(join(dataDir, "pglite", "base"), { recursive: true, mode: 0o755 });
  writeFileSync(join(dataDir, "pglite", "base", "1259"), "", { mode: 0o666 });
  const outside = join(work, "outside.txt");
  writeFileSync(outside, "", { mode: 0o644 });
  symlinkSync(outside, join(dataDir, "link"));
  mkdirSync(join(dataDir, "certs"), { mode: 0o755 });
  writeFileSync(join(dataDir, "certs", "ca.pem"), "", { mode: 0o644 });

  const { changed, failed } = tightenDataDir(dataDir);
  expect(failed).toEqual([]);
  expect(describeTightened(dataDir, changed).sort()).toEqual(["actors.db", "pglite/ (3)"]);
  expect(mode(join(dataDir, "actors.db"))).toBe(0o600);
  expect(mode(join(dataDir, "pglite"))).toBe(0o700);
  expect(mode(join(dataDir, "pglite", "base", "1259"))).toBe(0o600);
  expect(mode(outside)).toBe(0o644);
  expect(mode(join(dataDir, "certs", "ca.pem"))).toBe(0o644);
  expect(tightenDataDir(dataDir).changed).toEqual([]);

  createPrivateFile(join(dataDir, "traces.db"));
  expect(mode(join(dataDir, "traces.db"))).toBe(0o600);
});

test("tightening a data dir whose PGlite another process is writing skips the files removed meanwhile", async () => {
  // A node starts by tightening its data dir, before it takes the dir's locks: beside a node that still runs there
  // (an upgrade that did not wait for the old one to exit), it must get to the lock and be refused as "in use", not
  // fail on a file the running Postgres removed between listing its directory and reading its mode.
  const dataDir = openDir("busy");
  const pglite = join(dataDir, "pglite");
  mkdirSync(pglite);
  // A real PGlite in its own process, creating and dropping tables (each a relation file) and checkpointing.
  const churn = Bun.spawn(
    [
      process.execPath,
      "-e",
      `const { PGlite } = await import(${JSON.stringify(join(root, "node_modules/@electric-sql/pglite/dist/index.js"))});
      const db = await PGlite.create(${JSON.stringify(pglite)});
      console.log("ready");
      for (let i = 0; ; i++) {
        await db.exec(\`CREATE TABLE t_\${i % 50} (a int); INSERT INTO t_\${i % 50} SELECT generate_series(1, 100); DROP TABLE t_\${i % 50};\`);
        if (i % 20 === 0) await db.exec("CHECKPOINT");
      }`,
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  try {
    const ready = await churn.stdout.getReader().read();
    expect(new TextDecoder().decode(ready.value)).toContain("ready");
    const refusals: string[] = [];
    // With the removed files not skipped, a refusal came by run 23, 33 and 170 of three tries (15 to 40 in 1,500):
    // 600 runs still catch it, with 40% of the walks (CPU-bound, seconds beside the churn) of the 1,500 there were.
    for (let run = 0; run < 600; run++) {
      try {
        const { failed } = tightenDataDir(dataDir);
        // A file that is gone was not left readable by anyone: nothing to report either.
        refusals.push(...failed);
      } catch (error) {
        refusals.push(String(error));
      }
      await Bun.sleep(1);
    }
    expect(refusals).toEqual([]);
  } finally {
    churn.kill("SIGKILL");
    await churn.exited;
  }
}, 60_000);

test("a Deno node's files in an open data dir are 0600 and its directories 0700", async () => {
  const dataDir = openDir("deno");
  const node = await startProcess(denoEntryCommand(root), {
    cwd: root,
    pattern: /listening on (\S+)/,
    env: { HOST: "127.0.0.1", PORT: "0", EDGEWISE_DATA_DIR: dataDir, EDGEWISE_TRACING: "1" },
  });
  try {
    expect((await fetch(`${node.match}/healthz`)).status).toBe(200);
    expect(readdirSync(dataDir)).toEqual(expect.arrayContaining(["actors.db", "pglite", "traces.db"]));
    expect(readableByOthers(dataDir)).toEqual([]);
  } finally {
    await node.kill("SIGTERM");
  }
  expect(readableByOthers(dataDir)).toEqual([]);
}, 90_000);

test("npm run broker on PGlite: its files are private, and an earlier version's made so at start", async () => {
  const dataDir = openDir("broker");
  const start = () =>
    startProcess([process.execPath, join(root, "deploy/local/broker/main.ts")], {
      cwd: root,
      pattern: /QSTASH_URL=(\S+)/,
      env: { DATABASE_URL: "", EDGEWISE_DATA_DIR: dataDir, QSTASH_PORT: "0" },
    });
  const fresh = await start();
  expect(readableByOthers(dataDir)).toEqual([]);
  await fresh.kill("SIGTERM");
  expect(readableByOthers(dataDir)).toEqual([]);

  asAnEarlierVersionLeftThem(dataDir);
  expect(readableByOthers(dataDir)).toContain("pglite.lock 644");
  const upgraded = await start();
  try {
    expect(readableByOthers(dataDir)).toEqual([]);
    expect(upgraded.output()).toContain("could be read by other users; made them 0600 (directories 0700)");
  } finally {
    await upgraded.kill("SIGTERM");
  }
}, 90_000);
