// npm run backup -- --online: a running node backed up mid-saga restores and settles once; refusals leave nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type postgres from "postgres";
import { CommerceClient, type OrderView } from "../../test/commerce/client.ts";
import { checkInvariants, makeWorld, setUpWorld, type World } from "../../test/chaos/invariants.ts";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../../test/broker/helpers.ts";
import { type Started, startProcess } from "../../test/e2e/process.ts";
import { restartablePort } from "../../test/support/ports.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { type EdgewiseNode, startNode } from "../bun/node.ts";
import { referenceSystem } from "../reference.ts";
import { npmRun as run } from "../../test/support/npm-run.ts";

const root = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "edgewise-online-"));
const dir = (name: string) => join(work, name);
// The $TMPDIR of the nodes of this file (in process, and the processes it starts): they stage their copies in their
// data dirs, so nothing may land here, apart from any other run's.
const staged = dir("tmp");
mkdirSync(staged);
const ownTmpdir = process.env.TMPDIR;
process.env.TMPDIR = staged;
const started: Started[] = [];
const inProcess: EdgewiseNode[] = [];
afterAll(async () => {
  // The test files after this one in the same process make their dirs where they did.
  if (ownTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = ownTmpdir;
  for (const node of started) await node.kill("SIGKILL");
  for (const node of inProcess) await node.stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}, 30_000);

const env = { HOST: "127.0.0.1", RATE_LIMIT: "1000000/60s", EDGEWISE_SHUTDOWN_DELAY: "0ms" };
const client = (base: string, dataDir: string) =>
  new CommerceClient({ base, jwtSecret: readFileSync(join(dataDir, "jwt-secret"), "utf8").trim() });

/** `npm start` on `dataDir`, embedded defaults; `token` is the admin token it prints. */
async function nodeProcess(dataDir: string) {
  const port = restartablePort();
  const node = await startProcess([process.execPath, join(root, "edge/entries/bun.ts")], {
    cwd: root,
    env: { ...env, EDGEWISE_DATA_DIR: dataDir, PORT: String(port) },
    pattern: /admin token[^:]*: (\S+)/,
  });
  started.push(node);
  return {
    node,
    token: node.match,
    url: `http://127.0.0.1:${port}`,
    api: client(`http://127.0.0.1:${port}`, dataDir),
  };
}

/** A node in this process, so a test can read (or hold) its Postgres. */
async function nodeInProcess(dataDir: string, extra: { databaseUrl?: string; schema?: string } = {}) {
  const node = await startNode({
    config: parseConfig({
      ...env,
      PORT: "0",
      EDGEWISE_DATA_DIR: dataDir,
      ...(extra.databaseUrl ? { DATABASE_URL: extra.databaseUrl } : {}),
    }),
    ...(extra.schema ? { schema: extra.schema } : {}),
    ...referenceSystem(),
    backupQuiesceMs: 500,
    log: () => {},
  });
  inProcess.push(node);
  return { node, api: client(node.url, dataDir) };
}

const onlineBackup = (url: string, token: string, out: string) =>
  run({ EDGEWISE_TOKEN: token }, "backup", "--", "--online", "--url", url, "--out", out);

/** What a backup must not leave: the archive (if refused), a partial or check file beside it, a staging copy. */
const staging = () => readdirSync(staged);
const stagedIn = (dataDir: string) => existsSync(join(dataDir, ".online-backup"));
const archived = (archive: string) =>
  Bun.spawnSync(["tar", "-tzf", archive]).stdout.toString().split("\n").filter(Boolean);
const leftovers = () =>
  readdirSync(work).filter((name) => name.includes(".partial-") || name.includes(".check-"));

async function orders(api: CommerceClient, ids: string[]): Promise<OrderView[]> {
  return await Promise.all(ids.map((id) => api.order(id)));
}

/** Every order terminal, no reservation left, and two equal reads in a row. */
async function quiet(api: CommerceClient, world: World, ids: string[], timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const now = {
      orders: await orders(api, ids),
      skus: await Promise.all(world.skus.map((s) => api.sku(s.sku))),
    };
    const settled =
      now.orders.every((o) => o.status !== "pending") && now.skus.every((s) => s.reserved === 0);
    const text = JSON.stringify(now);
    if (settled && text === last) return now;
    if (Date.now() > deadline) throw new Error(`not quiet after ${timeoutMs} ms: ${text.slice(0, 2000)}`);
    last = settled ? text : "";
    await Bun.sleep(300);
  }
}

describe("npm run backup -- --online", () => {
  test("taken mid-saga: the node serves on and settles every order; the archive restores, and a node on it settles each order it holds once", async () => {
    const { world, plans } = makeWorld("online", 64, 17);
    const source = dir("live");
    const { token, url, api } = await nodeProcess(source);
    await setUpWorld(api, world);
    // Orders are placed without a pause until the backup has returned: it is taken with the saga under way.
    const placed: string[] = [];
    let backupDone = false;
    const next = plans[Symbol.iterator]();
    const place = async () => {
      for (let plan = next.next(); !plan.done; plan = next.next()) {
        let reply = await api.place(plan.value.customerId, plan.value.items, {
          "idempotency-key": plan.value.key,
        });
        // A node whose queue falls behind (a loaded machine) sheds new orders with 503 and Retry-After, writing
        // nothing: a client retries with the same key, as API.md says, and so does this one.
        for (let tries = 0; reply.status === 503 && reply.headers.has("retry-after") && tries < 30; tries++) {
          await Bun.sleep(Number(reply.headers.get("retry-after")) * 1000);
          reply = await api.place(plan.value.customerId, plan.value.items, {
            "idempotency-key": plan.value.key,
          });
        }
        expect(reply.status).toBe(202);
        placed.push(reply.body.orderId);
        if (backupDone && placed.length >= 40) return;
      }
    };
    const placing = Promise.all([place(), place()]);
    while (placed.length < 8) await Bun.sleep(20);
    const archive = dir("online.tar.gz");
    const made = await onlineBackup(url, token, archive);
    backupDone = true;
    await placing;
    expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: "" });
    expect(made.stdout).toContain("checked, mode 0600");
    expect(statSync(archive).mode & 0o777).toBe(0o600);
    expect(leftovers()).toEqual([]);
    // The node's staging copy, in its data dir, goes once the archive is sent; none was ever in $TMPDIR.
    for (let i = 0; i < 50 && stagedIn(source); i++) await Bun.sleep(20);
    expect(stagedIn(source)).toBe(false);
    expect(staging()).toEqual([]);
    expect(archived(archive).filter((path) => path.includes(".online-backup"))).toEqual([]);

    // The live node went on: every order it accepted, before, during and after the backup, settles.
    const live = await quiet(api, world, placed);
    expect(live.orders.length).toBe(placed.length);

    const target = dir("restored");
    const restored = await run({}, "restore", "--", archive, "--data-dir", target);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);

    // The orders the archive holds, some still pending in the actors' own state: taken mid-saga.
    const db = new Database(join(target, "actors.db"), { readonly: true });
    const held = db.query("SELECT actor, state FROM actor_state WHERE actor LIKE 'order/%'").all() as Array<{
      actor: string;
      state: string;
    }>;
    db.close();
    const pending = held.filter((row) => (JSON.parse(row.state) as { status?: string }).status === "pending");
    expect(pending.length).toBeGreaterThan(0);
    const ids = held.map((row) => row.actor.slice("order/".length));
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.every((id) => placed.includes(id))).toBe(true);

    const { node: again, api: restoredApi } = await nodeInProcess(target);
    // The same key: the live node's tokens are accepted.
    expect(restoredApi.target.jwtSecret).toBe(api.target.jwtSecret);
    const final = await quiet(restoredApi, world, ids);
    const report = await checkInvariants(
      restoredApi,
      world,
      final.orders,
      again.sql as unknown as postgres.Sql,
    );
    expect(report.violations).toEqual([]);
    await again.stop();
  }, 240_000);

  test("no quiet instant within the bound: 503 problem+json with Retry-After, nothing written, and the node goes on", async () => {
    const dataDir = dir("held");
    const { node, api } = await nodeInProcess(dataDir);
    const token = node.adminToken as string;
    const before = staging();
    // A transaction kept open longer than the bound (500 ms here): no instant with none open comes.
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let opened = () => {};
    const open = new Promise<void>((resolve) => {
      opened = resolve;
    });
    const holding = node.sql.begin(async (tx) => {
      await tx`SELECT 1`;
      opened();
      await released;
    });
    await open;
    try {
      const answer = await fetch(`${node.url}/v1/backup`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      expect(answer.status).toBe(503);
      expect(answer.headers.get("content-type")).toContain("application/problem+json");
      expect(Number(answer.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(((await answer.json()) as { detail: string }).detail).toContain("did not reach a quiet instant");

      const out = dir("held.tar.gz");
      const cli = await onlineBackup(node.url, token, out);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toContain("the node answered 503");
      expect(cli.stderr).toContain("retry after");
      expect(existsSync(out)).toBe(false);
      expect(leftovers()).toEqual([]);
      expect(staging()).toEqual(before);
      expect(stagedIn(dataDir)).toBe(false);
    } finally {
      release();
      await holding;
    }
    // Resumed: the node answers, places and settles an order, and a backup now succeeds.
    await api.putSku("held-sku", 5, 100);
    await api.putAccount("held-customer", 10_000);
    const placed = await api.place("held-customer", [{ sku: "held-sku", quantity: 1 }]);
    expect(placed.status).toBe(202);
    expect((await api.settle(placed.body.orderId)).status).toBe("confirmed");
    const out = dir("after-held.tar.gz");
    const ok = await onlineBackup(node.url, token, out);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(staging()).toEqual(before);
    expect(stagedIn(dataDir)).toBe(false);
  }, 120_000);

  test("refused to a caller without admin (401, 403), and over the CLI, with nothing written", async () => {
    const dataDir = dir("refusing");
    const { node, api } = await nodeInProcess(dataDir);
    const before = staging();
    const anonymous = await fetch(`${node.url}/v1/backup`, { method: "POST" });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toContain("application/problem+json");
    const customer = await api.token("customer-1", ["orders:write", "orders:read"]);
    const forbidden = await fetch(`${node.url}/v1/backup`, {
      method: "POST",
      headers: { authorization: `Bearer ${customer}` },
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get("content-type")).toContain("application/problem+json");
    const out = dir("refused.tar.gz");
    const cli = await onlineBackup(node.url, customer, out);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("the node answered 403: missing scope admin");
    expect(existsSync(out)).toBe(false);
    expect(leftovers()).toEqual([]);
    expect(staging()).toEqual(before);

    // Documented in /openapi.json, for admins.
    const spec = (await (await fetch(`${node.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { security?: unknown }>>;
    };
    expect(spec.paths["/v1/backup"]?.post?.security).toEqual([{ bearer: ["admin"] }, { apiKey: ["admin"] }]);
  }, 60_000);

  test("a staging dir an interrupted backup left is never archived, and goes at the node's next start and next backup", async () => {
    const dataDir = dir("leftover");
    const first = await nodeInProcess(dataDir);
    await first.node.stop();
    // What a node killed mid-copy leaves: part of its files (secrets included) and a partial archive.
    const leftover = () => {
      mkdirSync(join(dataDir, ".online-backup/data/pglite/base"), { recursive: true, mode: 0o700 });
      writeFileSync(join(dataDir, ".online-backup/data/jwt-secret"), "half a copy", { mode: 0o600 });
      writeFileSync(join(dataDir, ".online-backup/data/pglite/base/1"), "part of a page", { mode: 0o600 });
      writeFileSync(join(dataDir, ".online-backup/archive.tar.gz"), "truncated", { mode: 0o600 });
    };
    leftover();

    // Stopped: the offline backup leaves it out, so a restore never takes it for data.
    const offline = dir("leftover-offline.tar.gz");
    const made = await run({}, "backup", "--", "--data-dir", dataDir, "--out", offline);
    expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: "" });
    expect(archived(offline).some((path) => path.includes(".online-backup"))).toBe(false);
    expect(archived(offline)).toContain("jwt-secret");

    // The next start removes it, once it holds the data dir's locks.
    const { node } = await nodeInProcess(dataDir);
    expect(stagedIn(dataDir)).toBe(false);

    // One left while the node runs (a removal that failed): the next backup starts from an empty staging dir.
    leftover();
    const out = dir("leftover-online.tar.gz");
    const online = await onlineBackup(node.url, node.adminToken as string, out);
    expect({ code: online.code, stderr: online.stderr }).toEqual({ code: 0, stderr: "" });
    expect(archived(out).some((path) => path.includes(".online-backup"))).toBe(false);
    expect(archived(out)).toContain("jwt-secret");
    for (let i = 0; i < 50 && stagedIn(dataDir); i++) await Bun.sleep(20);
    expect(stagedIn(dataDir)).toBe(false);
    expect(staging()).toEqual([]);
  }, 120_000);

  // The SQLite copies were made by VACUUM INTO, which creates its file under the umask: actors.db and traces.db went
  // into the archive 0644 (the offline backup's were 0600), so a plain `tar -x` of it left them readable by all.
  test("every entry of the archive is private as a node keeps it: files 0600, directories 0700", async () => {
    const dataDir = dir("modes");
    const { node } = await nodeInProcess(dataDir);
    const out = dir("modes.tar.gz");
    const online = await onlineBackup(node.url, node.adminToken as string, out);
    expect({ code: online.code, stderr: online.stderr }).toEqual({ code: 0, stderr: "" });
    const listing = Bun.spawnSync(["tar", "-tvzf", out]).stdout.toString().split("\n").filter(Boolean);
    const entries = listing.map((line) => ({ mode: line.split(/\s+/)[0], path: line.split(/\s+/).at(-1) }));
    expect(entries.map((entry) => entry.path)).toContain("actors.db");
    expect(entries.map((entry) => entry.path)).toContain("traces.db");
    expect(entries.filter((entry) => entry.mode !== "-rw-------" && entry.mode !== "drwx------")).toEqual([]);
    await node.stop();
  }, 60_000);

  test("with DATABASE_URL: a clear refusal that points to the offline procedure, nothing written", async () => {
    const schema = uniqueSchema("online_pg");
    await createSchema(schema);
    try {
      const { node } = await nodeInProcess(dir("pg"), { databaseUrl: TEST_DATABASE_URL, schema });
      const before = staging();
      const answer = await fetch(`${node.url}/v1/backup`, {
        method: "POST",
        headers: { authorization: `Bearer ${node.adminToken}` },
      });
      expect(answer.status).toBe(409);
      expect(answer.headers.get("content-type")).toContain("application/problem+json");
      const { detail } = (await answer.json()) as { detail: string };
      expect(detail).toContain("embedded Postgres only");
      expect(detail).toContain("DATABASE_URL");
      expect(detail).toContain("Backup and restore");
      const out = dir("pg.tar.gz");
      const cli = await onlineBackup(node.url, node.adminToken as string, out);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toContain("the node answered 409");
      expect(existsSync(out)).toBe(false);
      expect(staging()).toEqual(before);
      await node.stop();
    } finally {
      await dropSchema(schema);
    }
  }, 60_000);
});
