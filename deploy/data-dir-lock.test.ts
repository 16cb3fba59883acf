// The data dir's lock: one holder at a time, in this process or another, and free again once its holder is gone.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBunSqlite } from "../actors/hosts/local/sqlite-bun.ts";
import { lockDataDir } from "./data-dir-lock.ts";

const open = (path: string) => openBunSqlite(path, "NORMAL");

test("a second lock on the same part is refused with who holds it, until the first is released", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-lock-"));
  try {
    const first = lockDataDir(dataDir, "pglite", open);
    expect(() => lockDataDir(dataDir, "pglite", open)).toThrow(
      `data dir ${dataDir} is in use: another process (pid ${process.pid}, since `,
    );
    expect(() => lockDataDir(dataDir, "pglite", open)).toThrow("holds its embedded Postgres (pglite/)");
    // Another part of the same dir is another lock.
    const actors = lockDataDir(dataDir, "actors", open);
    first.release();
    const again = lockDataDir(dataDir, "pglite", open);
    again.release();
    actors.release();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a lock held by another process refuses this one; once that process is killed, the lock is free", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-lock-"));
  const holder = Bun.spawn(
    [
      process.execPath,
      "-e",
      `const { lockDataDir } = await import(${JSON.stringify(join(import.meta.dir, "data-dir-lock.ts"))});
       const { openBunSqlite } = await import(${JSON.stringify(join(import.meta.dir, "../actors/hosts/local/sqlite-bun.ts"))});
       globalThis.held = lockDataDir(${JSON.stringify(dataDir)}, "actors", (p) => openBunSqlite(p, "NORMAL"));
       console.log("held");
       setInterval(() => {}, 1000);`,
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  try {
    const reader = holder.stdout.getReader();
    let printed = "";
    while (!printed.includes("held")) {
      const { done, value } = await reader.read();
      if (done) throw new Error("the holder exited");
      printed += new TextDecoder().decode(value);
    }
    expect(() => lockDataDir(dataDir, "actors", open)).toThrow(`another process (pid ${holder.pid}, since `);
    holder.kill("SIGKILL");
    await holder.exited;
    // No stale lock after a crash: the kernel dropped it with the process.
    lockDataDir(dataDir, "actors", open).release();
  } finally {
    holder.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a node of a version before the lock, still running on the dir, is refused; once it exits, the dir opens", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-lock-"));
  // What every version's local actor host does, the ones from before the lock included: actors.db open in WAL mode
  // for as long as the node runs, and no lock taken.
  const olderNode = Bun.spawn(
    [
      process.execPath,
      "-e",
      `const { openBunSqlite } = await import(${JSON.stringify(join(import.meta.dir, "../actors/hosts/local/sqlite-bun.ts"))});
       const { schema } = await import(${JSON.stringify(join(import.meta.dir, "../actors/hosts/local/sql.ts"))});
       const db = openBunSqlite(${JSON.stringify(join(dataDir, "actors.db"))}, "NORMAL");
       db.exec(schema);
       db.prepare("INSERT INTO actor_state (actor, version, state) VALUES (?, ?, ?)").run("order/o1", 1, "{}");
       globalThis.db = db;
       console.log("open");
       setInterval(() => {}, 1000);`,
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  try {
    const reader = olderNode.stdout.getReader();
    let printed = "";
    while (!printed.includes("open")) {
      const { done, value } = await reader.read();
      if (done) throw new Error("the older node exited");
      printed += new TextDecoder().decode(value);
    }
    // Before, the lock was granted: the new node then opened the same PGlite files and ran the same actors.
    expect(() => lockDataDir(dataDir, "actors", open)).toThrow(
      `data dir ${dataDir} is in use: another process has its actors (actors.db) open without holding the data dir's lock`,
    );
    // The embedded Postgres's lock alone does not look at actors.db; a node takes both, actors before it opens PGlite.
    lockDataDir(dataDir, "pglite", open).release();
    olderNode.kill("SIGKILL");
    await olderNode.exited;
    const lock = lockDataDir(dataDir, "actors", open);
    const actors = open(join(dataDir, "actors.db"));
    expect(actors.prepare("SELECT actor FROM actor_state").all()).toEqual([{ actor: "order/o1" }]);
    expect(actors.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    actors.close();
    lock.release();
  } finally {
    olderNode.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a node whose start fails part way lets go of the dir, so the same process can start again", async () => {
  const { startNode } = await import("./bun/node.ts");
  const { referenceSystem } = await import("./reference.ts");
  const { parseConfig } = await import("../shared/config/index.ts");
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-lock-"));
  const unused = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const closedPort = unused.port;
  unused.stop(true);
  try {
    // The actors' lock is taken, then Postgres cannot be reached.
    const config = parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      EDGEWISE_DATA_DIR: dataDir,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/test`,
    });
    await expect(startNode({ config, ...referenceSystem() })).rejects.toThrow("ECONNREFUSED");
    lockDataDir(dataDir, "actors", open).release();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 30_000);
