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
