// A node on embedded defaults whose data dir fills up: clear 503/507, no crash, and exact books once space is freed.
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ledgerInvariants } from "../../actors/commerce/billing/index.ts";
import { connect } from "../../deploy/local/broker/db.ts";
import { startEmbeddedPostgres } from "../../deploy/local/pglite/index.ts";
import { CommerceClient, eventually, type OrderView, uniqueName } from "../commerce/client.ts";
import { restartablePort } from "../support/ports.ts";

const root = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "edgewise-disk-full-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// A tmpfs of its own, in a user and mount namespace (unshare -rm), as backup-check.test.ts probes it: skipped where
// the kernel or container refuses it.
const probe = join(work, "probe");
mkdirSync(probe);
const tmpfs =
  Bun.which("unshare") !== null &&
  Bun.spawnSync(["unshare", "-rm", "sh", "-c", `mount -t tmpfs -o size=64k tmpfs ${probe}`]).exitCode === 0;

/**
 * In the namespace: mount the tmpfs, run the node, run it again once it exits (the restart on the freed disk), then
 * copy the data dir out for the checks on its files. The test reaches the tmpfs through /proc/<shell>/root.
 */
const script = `
mount -t tmpfs -o size=\${DISK_SIZE} tmpfs "$DISK" || exit 99
echo "mounted $$"
for run in 1 2; do
  "$BUN" edge/entries/bun.ts & echo "node $!"
  wait $!; echo "exited $?"
done
cp -a "$DISK/data" "$COPY"
echo "copied"
`;

class Shell {
  private printed = "";
  readonly child;
  constructor(env: Record<string, string>) {
    this.child = Bun.spawn(["unshare", "-rm", "sh", "-c", script], {
      cwd: root,
      env: { ...process.env, ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    for (const stream of [this.child.stdout, this.child.stderr])
      void (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>)
          this.printed += decoder.decode(chunk);
      })();
  }
  output = () => this.printed;
  /** The `nth` (1-based) match of `pattern`'s first group, waiting for it. */
  async nth(pattern: RegExp, nth: number, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = [...this.printed.matchAll(new RegExp(pattern.source, "gm"))][nth - 1];
      if (found) return found[1] ?? found[0];
      if (this.child.exitCode !== null) break;
      await Bun.sleep(25);
    }
    throw new Error(`no ${pattern} #${nth}:\n${this.printed.slice(-4000)}`);
  }
}

/** Writes zeros into `path` until the file system refuses: the tmpfs is then full to the last page. */
function fill(path: string): number {
  const fd = openSync(path, "w");
  let written = 0;
  try {
    for (const size of [1 << 20, 4096]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

const REQUEST_TIMEOUT_MS = 5_000;

test.skipIf(!tmpfs)(
  "a full data dir answers 503/507, loses nothing, and the books are exact once space is freed",
  async () => {
    const disk = join(work, "disk");
    const copy = join(work, "copy");
    mkdirSync(disk);
    const port = restartablePort();
    const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
    const shell = new Shell({
      BUN: process.execPath,
      DISK: disk,
      DISK_SIZE: "64m",
      COPY: copy,
      EDGEWISE_DATA_DIR: join(disk, "data"),
      HOST: "127.0.0.1",
      PORT: String(port),
      JWT_SECRET: jwtSecret,
      RATE_LIMIT: "1000000/60s",
      REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_MS}ms`,
    });
    try {
      const shellPid = Number(await shell.nth(/^mounted (\d+)$/, 1));
      const firstPid = Number(await shell.nth(/^node (\d+)$/, 1));
      await shell.nth(/\[edgewise\] listening on/, 1, 45_000);
      const onDisk = (name: string) => join(`/proc/${shellPid}/root`, disk, name);
      const api = new CommerceClient({ base: `http://127.0.0.1:${port}`, jwtSecret });

      const skus = Array.from({ length: 4 }, (_, i) => ({
        sku: uniqueName(`disk${i}`),
        stocked: 15 + 5 * i,
        priceCents: 120 + 90 * i,
      }));
      const customers = Array.from({ length: 6 }, (_, i) => ({
        id: uniqueName(`dcust${i}`),
        funded: 2_000 + 900 * i,
      }));
      for (const { sku, stocked, priceCents } of skus) await api.putSku(sku, stocked, priceCents);
      for (const { id, funded } of customers) await api.putAccount(id, funded);
      let n = 0;
      const plan = () => {
        n++;
        return {
          customerId: (customers[n % customers.length] as { id: string }).id,
          items: [
            { sku: (skus[n % skus.length] as { sku: string }).sku, quantity: 1 + (n % 3) },
            { sku: (skus[(n * 7 + 1) % skus.length] as { sku: string }).sku, quantity: 1 },
          ],
        };
      };
      const statuses: Record<string, number> = {};
      const accepted: string[] = [];
      const refusals: string[] = [];
      /** Places one order with a deadline past the node's REQUEST_TIMEOUT: a hang fails the test. */
      const place = async () => {
        const { customerId, items } = plan();
        const started = Date.now();
        const response = await fetch(`${api.target.base}/v1/orders`, {
          method: "POST",
          headers: { authorization: `Bearer ${await api.token()}`, "content-type": "application/json" },
          body: JSON.stringify({ customerId, items }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS + 3_000),
        });
        const text = await response.text();
        statuses[response.status] = (statuses[response.status] ?? 0) + 1;
        expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 2_000);
        if (response.status === 201 || response.status === 202) accepted.push(JSON.parse(text).orderId);
        else {
          expect({ status: response.status, type: response.headers.get("content-type") }).toEqual({
            status: response.status === 507 ? 507 : 503,
            type: "application/problem+json",
          });
          refusals.push(JSON.parse(text).code ?? JSON.parse(text).type);
        }
      };

      // Orders accepted and still in flight (their reservations and payments on the queue) when the disk fills,
      // then more placed while it is full, for a few seconds of the broker's redeliveries.
      await Promise.all(Array.from({ length: 20 }, () => place()));
      expect(accepted.length).toBe(20);
      const filled = fill(onDisk("filler"));
      const pendingWhenFull = (
        await Promise.all(accepted.map((id) => api.order(id).catch(() => undefined)))
      ).filter((order) => order?.status === "pending").length;
      for (let round = 0; round < 6; round++) {
        await Promise.all(Array.from({ length: 5 }, () => place()));
        await Bun.sleep(400);
      }
      const whileFull = { ...statuses };
      // Readiness says why: the data dir takes no file.
      const ready = await fetch(`${api.target.base}/readyz`, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      expect({ status: ready.status, unwritable: (await ready.text()).includes("unwritable") }).toEqual({
        status: 503,
        unwritable: true,
      });
      unlinkSync(onDisk("filler"));
      // And a few once space is back, which must be accepted again.
      await eventually(
        async () => {
          const count = accepted.length;
          await place();
          return accepted.length > count;
        },
        "an order accepted once space is freed",
        20_000,
      );
      console.error(
        `disk full: filler ${filled} bytes; statuses ${JSON.stringify(statuses)} (until freed: ${JSON.stringify(whileFull)}; ${pendingWhenFull} of 20 pending when it filled); ` +
          `refusals ${JSON.stringify(Object.fromEntries(refusals.map((code) => [code, refusals.filter((c) => c === code).length])))}`,
      );
      expect(refusals.length).toBeGreaterThan(0);
      await eventually(
        async () => (await fetch(`${api.target.base}/readyz`)).status === 200,
        "ready once space is freed",
      );

      // Every accepted order reaches a terminal state, and API.md's invariants hold exactly: on the same process.
      const settled = await Promise.all(accepted.map((orderId) => api.settle(orderId, undefined, 30_000)));
      const books = async (orders: OrderView[]) => {
        const confirmed = orders.filter((order) => order.status === "confirmed");
        const out: Record<string, number> = {};
        for (const { sku, stocked } of skus) {
          const sold = confirmed.reduce(
            (sum, o) => sum + o.items.filter((l) => l.sku === sku).reduce((s, l) => s + l.quantity, 0),
            0,
          );
          const view = await api.sku(sku);
          out[`${sku} stock drift`] = view.available + view.reserved + sold - stocked;
          out[`${sku} reserved`] = view.reserved;
        }
        for (const { id, funded } of customers) {
          const mine = confirmed.filter((o) => o.customerId === id);
          const spent = mine.reduce((sum, o) => sum + (o.totalCents ?? 0), 0);
          const points = mine.reduce((sum, o) => sum + Math.floor((o.totalCents ?? 0) / 100), 0);
          out[`${id} balance drift`] = (await api.balance(id)) - (funded - spent);
          out[`${id} points drift`] = (await api.points(id)) - points;
        }
        return out;
      };
      const zero = (report: Record<string, number>) => Object.values(report).every((v) => v === 0);
      let report: Record<string, number> = {};
      await eventually(
        async () => {
          report = await books(settled);
          return zero(report);
        },
        "the invariants to hold",
        20_000,
      ).catch(() => expect(report).toEqual({}));
      const outcome = (status: string) => settled.filter((o) => o.status === status).length;
      console.error(
        `disk full: ${accepted.length} accepted, ${outcome("confirmed")} confirmed, ${outcome("rejected")} rejected`,
      );
      expect(outcome("confirmed")).toBeGreaterThan(0);
      const warnings = (pattern: RegExp) =>
        shell.output().match(new RegExp(pattern.source, "g"))?.length ?? 0;
      console.error(
        `disk full: logged ${warnings(/"msg":"relay pass failed"/)} relay pass failures, ` +
          `${warnings(/"code":"53100"/)} PGlite 53100, ${warnings(/"code":"breaker.open"/)} breaker.open, ` +
          `${warnings(/"status":500/)} status 500`,
      );
      expect(warnings(/"status":500/)).toBe(0);
      // The node never needed a restart.
      expect(shell.output()).not.toMatch(/^exited/m);
      process.kill(firstPid, 0);

      // A restart on the freed disk opens everything: the same orders, the same books.
      process.kill(firstPid, "SIGTERM");
      expect(await shell.nth(/^exited (\d+)$/, 1)).toBe("0");
      const secondPid = Number(await shell.nth(/^node (\d+)$/, 2));
      await shell.nth(/\[edgewise\] listening on/, 2, 45_000);
      const reread = await Promise.all(accepted.map((orderId) => api.order(orderId)));
      expect(reread.map((o) => [o.orderId, o.status])).toEqual(settled.map((o) => [o.orderId, o.status]));
      expect(zero(await books(reread))).toBe(true);
      process.kill(secondPid, "SIGTERM");
      expect(await shell.nth(/^exited (\d+)$/, 2)).toBe("0");
      await shell.nth(/^copied$/, 1);
      expect(await shell.child.exited).toBe(0);
    } finally {
      for (const pid of shell.output().matchAll(/^node (\d+)$/gm)) {
        try {
          process.kill(Number(pid[1]), "SIGKILL");
        } catch {}
      }
      shell.child.kill("SIGKILL");
    }

    // The files themselves: SQLite passes its integrity check, PGlite opens and its ledger balances entry by entry.
    const actors = new Database(join(copy, "actors.db"), { readonly: true });
    expect(actors.query("PRAGMA integrity_check").all()).toEqual([{ integrity_check: "ok" }]);
    actors.close();
    const pg = await startEmbeddedPostgres({ dataDir: copy });
    const sql = await connect({ url: pg.url, max: pg.maxConnections, socket: pg.socket });
    try {
      expect((await ledgerInvariants(sql)).violations).toEqual([]);
    } finally {
      await sql.end();
      await pg.stop();
    }
  },
  90_000,
);
