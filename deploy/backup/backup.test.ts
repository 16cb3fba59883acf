// npm run backup and restore, end to end: a node's orders, money and stock come back exactly, in-flight ones settle once.
import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  linkSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { Database } from "bun:sqlite";
import type postgres from "postgres";
import { type EdgewiseNode, startNode } from "../bun/node.ts";
import { referenceSystem } from "../reference.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { CommerceClient, type OrderView } from "../../test/commerce/client.ts";
import { checkInvariants, makeWorld, setUpWorld, type World } from "../../test/chaos/invariants.ts";
import { denoEntryCommand, type Started, startProcess } from "../../test/e2e/process.ts";
import { restartablePort } from "../../test/support/ports.ts";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../../test/broker/helpers.ts";
import { acquireActorHostLease } from "../actor-host-lease.ts";
import { npmRun as runWith } from "../../test/support/npm-run.ts";

const root = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "edgewise-backup-"));
const dir = (name: string) => join(work, name);
const started: Started[] = [];
const inProcess: EdgewiseNode[] = [];
afterAll(async () => {
  for (const node of started) await node.kill("SIGKILL");
  for (const node of inProcess) await node.stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}, 30_000);

const env = { HOST: "127.0.0.1", RATE_LIMIT: "1000000/60s", EDGEWISE_SHUTDOWN_DELAY: "0ms" };

/** `npm start` on `dataDir`, embedded defaults, as an operator runs it. */
async function nodeProcess(dataDir: string): Promise<{ node: Started; api: CommerceClient }> {
  const port = restartablePort();
  const node = await startProcess([process.execPath, join(root, "edge/entries/bun.ts")], {
    cwd: root,
    env: { ...env, EDGEWISE_DATA_DIR: dataDir, PORT: String(port) },
    pattern: /admin token[^:]*: (\S+)/,
  });
  started.push(node);
  return { node, api: client(`http://127.0.0.1:${port}`, dataDir) };
}

/** `npm run start:deno` on `dataDir`, embedded defaults: Deno's node:sqlite and PGlite write the same dir. */
async function denoNodeProcess(dataDir: string): Promise<{ node: Started; api: CommerceClient }> {
  const port = restartablePort();
  const node = await startProcess(denoEntryCommand(root), {
    cwd: root,
    env: { ...env, EDGEWISE_DATA_DIR: dataDir, PORT: String(port) },
    pattern: /admin token[^:]*: (\S+)/,
  });
  started.push(node);
  return { node, api: client(`http://127.0.0.1:${port}`, dataDir) };
}

/** A node in this process, so the checks can read its Postgres (the embedded PGlite serves one process). */
async function nodeInProcess(
  dataDir: string,
  postgres: { url: string; schema: string } | undefined = undefined,
): Promise<{ node: EdgewiseNode; api: CommerceClient }> {
  const node = await startNode({
    config: parseConfig({
      ...env,
      PORT: "0",
      EDGEWISE_DATA_DIR: dataDir,
      ...(postgres ? { DATABASE_URL: postgres.url } : {}),
    }),
    ...(postgres ? { schema: postgres.schema } : {}),
    ...referenceSystem(),
    log: () => {},
  });
  inProcess.push(node);
  return { node, api: client(node.url, dataDir) };
}

/** Tokens signed with the key the data dir holds: a restored node must have the same one. */
const client = (base: string, dataDir: string) =>
  new CommerceClient({ base, jwtSecret: readFileSync(join(dataDir, "jwt-secret"), "utf8").trim() });

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return await runWith({}, ...args);
}

/** Everything API.md lets a client read about the world: orders, their read model, stock, balances, points. */
async function snapshot(api: CommerceClient, world: World, orderIds: string[]) {
  const orders = await Promise.all(orderIds.map((id) => api.order(id)));
  const skus = await Promise.all(world.skus.map(({ sku }) => api.sku(sku)));
  const customers = await Promise.all(
    world.customers.map(async ({ id }) => {
      const listed = await api.call<{ items: OrderView[] }>("GET", `/v1/orders?customerId=${id}&limit=100`);
      return {
        id,
        balance: await api.balance(id),
        points: await api.points(id),
        listed: listed.body.items.map((o) => `${o.orderId}:${o.status}:${o.totalCents}`).sort(),
      };
    }),
  );
  return { orders, skus, customers };
}

/** Waits until every order is terminal and nothing moves any more (no reservation left, two equal snapshots). */
async function quiet(api: CommerceClient, world: World, orderIds: string[], timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const now = await snapshot(api, world, orderIds);
    const settled =
      now.orders.every((o) => o.status !== "pending") &&
      now.skus.every((s) => s.reserved === 0) &&
      now.customers.every((c) => c.listed.length === now.orders.filter((o) => o.customerId === c.id).length);
    const text = JSON.stringify(now);
    if (settled && text === last) return now;
    if (Date.now() > deadline) throw new Error(`not quiet after ${timeoutMs} ms: ${text.slice(0, 2000)}`);
    last = settled ? text : "";
    await Bun.sleep(300);
  }
}

async function placeAll(api: CommerceClient, plans: ReturnType<typeof makeWorld>["plans"]) {
  const ids: string[] = [];
  for (const plan of plans) {
    const reply = await api.place(plan.customerId, plan.items, { "idempotency-key": plan.key });
    expect(reply.status).toBe(202);
    ids.push(reply.body.orderId);
  }
  return ids;
}

/** Every file 0600 and every directory 0700 under `path`. */
function modesUnder(path: string): string[] {
  const wrong: string[] = [];
  const visit = (p: string) => {
    const stat = statSync(p);
    const mode = stat.mode & 0o777;
    if (stat.isDirectory()) {
      if (mode !== 0o700) wrong.push(`${p} ${mode.toString(8)}`);
      for (const name of readdirSync(p)) visit(join(p, name));
    } else if (mode !== 0o600) wrong.push(`${p} ${mode.toString(8)}`);
  };
  visit(path);
  return wrong;
}

const { world, plans } = makeWorld("backup", 32, 11);

describe("npm run backup / npm run restore", () => {
  let settledBefore: Awaited<ReturnType<typeof snapshot>>;
  let settledIds: string[] = [];

  test("refused while the node runs, naming it; a stopped node's data dir restores exactly, and works on", async () => {
    const source = dir("source");
    const { node, api } = await nodeProcess(source);
    await setUpWorld(api, world);
    settledIds = await placeAll(api, plans.slice(0, 16));
    settledBefore = await quiet(api, world, settledIds);
    expect(settledBefore.orders.filter((o) => o.status === "confirmed").length).toBeGreaterThan(0);

    const archive = dir("settled.tar.gz");
    const refused = await run("backup", "--", "--data-dir", source, "--out", archive);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`is in use: another process (pid ${node.child.pid}`);
    expect(refused.stderr).toContain("Stop it, then back up");
    expect(existsSync(archive)).toBe(false);
    expect(readdirSync(work).filter((name) => name.includes("partial"))).toEqual([]);

    await node.kill("SIGTERM");
    const made = await run("backup", "--", "--data-dir", source, "--out", archive);
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    expect(statSync(archive).mode & 0o777).toBe(0o600);

    const target = dir("restored");
    const restored = await run("restore", "--", archive, "--data-dir", target);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(modesUnder(target)).toEqual([]);

    const { node: again, api: restoredApi } = await nodeInProcess(target);
    // The same key: a token the old node's key signs is accepted.
    expect(restoredApi.target.jwtSecret).toBe(api.target.jwtSecret);
    expect(await snapshot(restoredApi, world, settledIds)).toEqual(settledBefore);
    const fresh = await restoredApi.place(world.customers[0]?.id as string, [
      { sku: world.skus[5]?.sku as string, quantity: 1 },
    ]);
    expect(fresh.status).toBe(202);
    expect((await restoredApi.settle(fresh.body.orderId)).status).not.toBe("pending");
    settledIds.push(fresh.body.orderId);
    const after = await quiet(restoredApi, world, settledIds);
    const report = await checkInvariants(
      restoredApi,
      world,
      after.orders,
      again.sql as unknown as postgres.Sql,
    );
    expect(report.violations).toEqual([]);
    await again.stop();
  }, 120_000);

  // Runs on the first test's restored dir: a restored node is backed up and restored again.
  test("messages in flight when the node died settle exactly once after a restore", async () => {
    const source = dir("restored");
    const { node, api } = await nodeProcess(source);
    const inFlight = await placeAll(api, plans.slice(16));
    await node.kill("SIGKILL");
    const crashed = dir("crashed.tar.gz");
    expect((await run("backup", "--", "--data-dir", source, "--out", crashed)).code).toBe(0);
    const target = dir("restored-crashed");
    expect((await run("restore", "--", crashed, "--data-dir", target)).code).toBe(0);

    // The saga was under way when the process died: some orders pending in the restored actors' own state.
    const db = new Database(join(target, "actors.db"), { readonly: true });
    const pending = db
      .query("SELECT state FROM actor_state WHERE actor LIKE 'order/%'")
      .all()
      .filter(
        (row) => (JSON.parse((row as { state: string }).state) as { status?: string }).status === "pending",
      );
    db.close();
    expect(pending.length).toBeGreaterThan(0);

    const { node: again, api: restoredApi } = await nodeInProcess(target);
    const ids = [...settledIds, ...inFlight];
    const final = await quiet(restoredApi, world, ids);
    const report = await checkInvariants(
      restoredApi,
      world,
      final.orders,
      again.sql as unknown as postgres.Sql,
    );
    expect(report.violations).toEqual([]);
    // The orders settled before the first backup are as they were.
    const before = new Map(settledBefore.orders.map((o) => [o.orderId, o]));
    for (const order of final.orders)
      if (before.has(order.orderId)) expect(order).toEqual(before.get(order.orderId) as OrderView);
    await again.stop();
  }, 120_000);

  test("refuses a non-empty target, and a truncated, corrupt or edited archive, leaving the target as it was", async () => {
    // A small data dir of its own: a secret, a SQLite file, a tree.
    const small = dir("small");
    mkdirSync(join(small, "pglite", "base"), { recursive: true, mode: 0o700 });
    writeFileSync(join(small, "jwt-secret"), crypto.randomUUID(), { mode: 0o600 });
    writeFileSync(join(small, "pglite", "base", "1"), randomBytes(300_000), { mode: 0o600 });
    const actors = new Database(join(small, "actors.db"));
    actors.exec("CREATE TABLE actor_state (actor TEXT, state TEXT)");
    actors.close();
    const archive = dir("small.tar.gz");
    expect((await run("backup", "--", "--data-dir", small, "--out", archive)).code).toBe(0);
    const busy = dir("busy");
    mkdirSync(busy);
    writeFileSync(join(busy, "keep"), "mine");
    const refused = await run("restore", "--", archive, "--data-dir", busy);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("is not empty");
    expect(readdirSync(busy)).toEqual(["keep"]);

    const whole = readFileSync(archive);
    const tar = gunzipSync(whole);
    const at = tar.indexOf(Buffer.from(readFileSync(join(small, "jwt-secret"))));
    const edited = Buffer.from(tar);
    edited[at] = (edited[at] as number) ^ 1;
    const bad = {
      truncated: whole.subarray(0, Math.floor(whole.length / 2)),
      corrupt: Buffer.concat([whole.subarray(0, 4096), Buffer.alloc(64, 0x55), whole.subarray(4160)]),
      edited: gzipSync(edited),
    };
    for (const [kind, bytes] of Object.entries(bad)) {
      const file = dir(`${kind}.tar.gz`);
      writeFileSync(file, bytes);
      const empty = dir(`empty-${kind}`);
      mkdirSync(empty);
      const missing = dir(`missing-${kind}`);
      for (const target of [empty, missing]) {
        const result = await run("restore", "--", file, "--data-dir", target);
        expect({ kind, code: result.code }).toEqual({ kind, code: 65 });
        expect(result.stderr.trim().split("\n")).toHaveLength(1);
        expect(result.stderr).toContain("the archive is corrupt or incomplete");
      }
      expect(readdirSync(empty)).toEqual([]);
      expect(existsSync(missing)).toBe(false);
    }
    expect((await run("restore", "--", dir("edited.tar.gz"), "--data-dir", dir("x"))).stderr).toContain(
      "jwt-secret does not match its checksum",
    );
  }, 60_000);

  // strace shows each fsync with its file's path (-y): the one way to see what a restore flushes, short of a power cut.
  // Skipped where strace is missing or may not trace (a container without ptrace).
  const strace = ((path) =>
    path && Bun.spawnSync([path, "-o", "/dev/null", "true"]).exitCode === 0 ? path : undefined)(
    Bun.which("strace"),
  );
  test.skipIf(!strace)(
    "a restore flushes every directory it made, so a restored file's name survives a power cut",
    async () => {
      const nested = dir("nested");
      mkdirSync(join(nested, "pglite", "base", "1"), { recursive: true, mode: 0o700 });
      writeFileSync(join(nested, "jwt-secret"), crypto.randomUUID(), { mode: 0o600 });
      writeFileSync(join(nested, "pglite", "base", "1", "1259"), crypto.randomUUID(), { mode: 0o600 });
      const archive = dir("nested.tar.gz");
      expect((await run("backup", "--", "--data-dir", nested, "--out", archive)).code).toBe(0);
      const target = dir("nested-restored");
      const log = dir("nested-restore.strace");
      const restored = Bun.spawnSync(
        [
          strace as string,
          "-f",
          "-y",
          "-e",
          "trace=fsync",
          "-o",
          log,
          process.execPath,
          "deploy/backup/main.ts",
        ].concat(["restore", archive, "--data-dir", target]),
        { cwd: root, stdout: "pipe", stderr: "pipe" },
      );
      expect(restored.exitCode).toBe(0);
      const synced = [...readFileSync(log, "utf8").matchAll(/fsync\(\d+<([^>]+)>\) = 0/g)].map(
        (m) => m[1] ?? "",
      );
      // Under its staging name or its own: the directory's entries are on disk before the restore says it is done.
      for (const path of ["", "pglite", "pglite/base", "pglite/base/1"]) {
        expect({
          path,
          synced: synced.some((p) => p.startsWith(target) && p.endsWith(path ? `/${path}` : target)),
        }).toEqual({ path, synced: true });
      }
      expect(readFileSync(join(target, "pglite", "base", "1", "1259"), "utf8")).toBe(
        readFileSync(join(nested, "pglite", "base", "1", "1259"), "utf8"),
      );
    },
    30_000,
  );

  test("refuses a data dir holding one file under two names, which tar would store as a link restore refuses", async () => {
    const linked = dir("linked");
    mkdirSync(join(linked, "keys"), { recursive: true, mode: 0o700 });
    writeFileSync(join(linked, "jwt-secret"), crypto.randomUUID(), { mode: 0o600 });
    linkSync(join(linked, "jwt-secret"), join(linked, "keys", "copy"));
    const refused = await run("backup", "--", "--data-dir", linked, "--out", dir("linked.tar.gz"));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("keys/copy is a second name (a hard link) of jwt-secret");
    expect(existsSync(dir("linked.tar.gz"))).toBe(false);
  }, 30_000);

  test("with DATABASE_URL: the data dir archive and a pg_dump of the node's schema, both taken while it is stopped", async () => {
    const schema = uniqueSchema("backup_pg");
    const database = { url: TEST_DATABASE_URL, schema };
    const pg = makeWorld("backup-pg", 8, 5);
    try {
      const source = dir("pg-source");
      const { node, api } = await nodeInProcess(source, database);
      await setUpWorld(api, pg.world);
      const ids = await placeAll(api, pg.plans);
      const before = await quiet(api, pg.world, ids);
      await node.stop();

      const archivePg = dir("pg.tar.gz");
      const made = await runWith(
        { DATABASE_URL: TEST_DATABASE_URL },
        "backup",
        "--",
        "--data-dir",
        source,
        "--out",
        archivePg,
      );
      expect(made.code).toBe(0);
      expect(made.stdout).toContain("Dump that schema now, before the node starts again");
      const dump = dir("pg.dump");
      const dumped = Bun.spawnSync([
        "pg_dump",
        "--format=custom",
        `--schema=${schema}`,
        `--file=${dump}`,
        TEST_DATABASE_URL,
      ]);
      expect(dumped.stderr.toString()).toBe("");
      // The database is lost: restore it from the dump, then the data dir from the archive.
      await dropSchema(schema);
      const loaded = Bun.spawnSync([
        "pg_restore",
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        `--dbname=${TEST_DATABASE_URL}`,
        dump,
      ]);
      expect(loaded.stderr.toString()).toBe("");
      const target = dir("pg-restored");
      const restored = await runWith(
        { DATABASE_URL: TEST_DATABASE_URL },
        "restore",
        "--",
        archivePg,
        "--data-dir",
        target,
      );
      expect(restored.code).toBe(0);
      expect(restored.stdout).toContain("restore the dump taken with this backup before starting it");

      const { node: again, api: restoredApi } = await nodeInProcess(target, database);
      expect(await snapshot(restoredApi, pg.world, ids)).toEqual(before);
      const fresh = await restoredApi.place(pg.world.customers[1]?.id as string, [
        { sku: pg.world.skus[5]?.sku as string, quantity: 1 },
      ]);
      expect(fresh.status).toBe(202);
      ids.push(fresh.body.orderId);
      const after = await quiet(restoredApi, pg.world, ids);
      const report = await checkInvariants(
        restoredApi,
        pg.world,
        after.orders,
        again.sql as unknown as postgres.Sql,
      );
      expect(report.violations).toEqual([]);
      await again.stop();
    } finally {
      await dropSchema(schema);
    }
  }, 120_000);

  test("with DATABASE_URL, refused while an actor host holds the database's lease", async () => {
    const leased = dir("leased");
    mkdirSync(leased, { mode: 0o700 });
    new Database(join(leased, "actors.db")).close();
    // Its own schema, named by the URL as an operator's role would set it: the lease is per schema.
    const schema = uniqueSchema("backup_lease");
    await createSchema(schema);
    const lease = await acquireActorHostLease({
      url: TEST_DATABASE_URL,
      schema,
      holder: "backup-test holder",
      onLost: () => {},
    });
    try {
      const refused = await runWith(
        { DATABASE_URL: `${TEST_DATABASE_URL}?search_path=${schema}` },
        "backup",
        "--",
        "--data-dir",
        leased,
        "--out",
        dir("leased.tar.gz"),
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("backup-test holder");
      // The backup's remedy, not a node's (run this one as a gateway).
      expect(refused.stderr).toContain("Stop it, then back up");
      expect(refused.stderr).not.toContain("ACTOR_HOST_URL");
      expect(existsSync(dir("leased.tar.gz"))).toBe(false);
    } finally {
      await lease.release();
      await dropSchema(schema);
    }
  }, 30_000);

  test("a Deno node's data dir: refused while it runs, restored exactly, and a Deno node works on it", async () => {
    const source = dir("deno-source");
    const { node, api } = await denoNodeProcess(source);
    await setUpWorld(api, world);
    const ids = await placeAll(api, plans.slice(0, 8));
    const before = await quiet(api, world, ids);
    expect(before.orders.filter((o) => o.status === "confirmed").length).toBeGreaterThan(0);

    // Deno's node holds the same locks as Bun's: the backup names it and writes nothing.
    const archive = dir("deno.tar.gz");
    const refused = await run("backup", "--", "--data-dir", source, "--out", archive);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`is in use: another process (pid ${node.child.pid}`);
    expect(existsSync(archive)).toBe(false);

    await node.kill("SIGTERM");
    const made = await run("backup", "--", "--data-dir", source, "--out", archive);
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    const target = dir("deno-restored");
    const restored = await run("restore", "--", archive, "--data-dir", target);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);

    const { node: again, api: restoredApi } = await denoNodeProcess(target);
    expect(await snapshot(restoredApi, world, ids)).toEqual(before);
    const fresh = await restoredApi.place(world.customers[0]?.id as string, [
      { sku: world.skus[5]?.sku as string, quantity: 1 },
    ]);
    expect(fresh.status).toBe(202);
    expect((await restoredApi.settle(fresh.body.orderId)).status).not.toBe("pending");
    await again.kill("SIGTERM");
  }, 120_000);

  test("refused while another process has a SQLite file of the dir open (a gateway takes no lock)", async () => {
    const gateway = dir("gateway");
    mkdirSync(gateway, { mode: 0o700 });
    const traces = new Database(join(gateway, "traces.db"));
    traces.exec("PRAGMA journal_mode = WAL; CREATE TABLE spans (id TEXT)");
    try {
      const refused = await run("backup", "--", "--data-dir", gateway, "--out", dir("gateway.tar.gz"));
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("another process has traces.db open");
    } finally {
      traces.close();
    }
    expect((await run("backup", "--", "--data-dir", gateway, "--out", dir("gateway.tar.gz"))).code).toBe(0);
  }, 30_000);
});
