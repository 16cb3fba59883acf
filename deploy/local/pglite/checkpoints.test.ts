// PGlite makes no checkpoint while it runs; Checkpoints makes one once enough WAL was written, so pg_wal is recycled.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "../broker/db.ts";
import { Checkpoints } from "./checkpoints.ts";
import { startEmbeddedPostgres } from "./index.ts";

const dataDir = mkdtempSync(join(tmpdir(), "edgewise-checkpoints-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

test("a checkpoint is made once the WAL since the last one passes the threshold", async () => {
  const pg = await startEmbeddedPostgres({ dataDir, sync: "NORMAL" });
  const sql = await connect({ url: pg.url, max: pg.maxConnections, socket: pg.socket });
  const checkpoints = new Checkpoints(sql, { everyMs: 20, walBytes: 8 * MiB });
  try {
    await sql`CREATE TABLE churn (id bigserial PRIMARY KEY, body text NOT NULL)`;
    // About 12 MiB of WAL: rows of incompressible text, inserted and deleted, as a queue table would.
    for (let round = 0; round < 4; round++) {
      await sql`INSERT INTO churn (body) SELECT string_agg(md5(g::text || '.' || i), '')
        FROM generate_series(1, 3000) g, generate_series(1, 30) i GROUP BY g`;
      await sql`DELETE FROM churn`;
    }
    // PGlite itself never checkpointed, whatever max_wal_size says: all of it is still ahead of the redo point.
    const written = await checkpoints.walSinceCheckpoint();
    expect(written).toBeGreaterThan(8 * MiB);

    checkpoints.start();
    for (let i = 0; i < 250 && checkpoints.made === 0; i++) await Bun.sleep(20);
    expect(checkpoints.made).toBe(1);
    expect(await checkpoints.walSinceCheckpoint()).toBeLessThan(MiB);
    // Below the threshold, the next look makes none.
    await checkpoints.check();
    expect(checkpoints.made).toBe(1);
  } finally {
    await checkpoints.stop();
    await sql.end({ timeout: 5 });
    await pg.stop();
  }
}, 30_000);
