// One actor host per database: a second node hosting actors on the same Postgres schema is refused, a gateway is not.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import type { EdgewiseError } from "../shared/errors/index.ts";
import { parseConfig } from "../shared/config/index.ts";
import { startCommerceNode } from "../test/commerce/bun-node.ts";
import { eventually } from "../test/commerce/client.ts";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../test/broker/helpers.ts";
import { acquireActorHostLease, LEASE_CLASS } from "./actor-host-lease.ts";
import { connect } from "./local/broker/db.ts";
import { startNode } from "./bun/node.ts";
import { referenceSystem } from "./reference.ts";
import { edgewiseRejection } from "../test/support/errors.ts";

const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
const schemas: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await dropSchema(schema);
  await admin.end();
});

async function freshSchema(name: string): Promise<string> {
  const schema = uniqueSchema(name);
  await createSchema(schema);
  schemas.push(schema);
  return schema;
}

const holders = (name: string) =>
  admin<
    Array<{ pid: number }>
  >`SELECT pid FROM pg_stat_activity WHERE application_name = ${`edgewise actor host ${name}`}`;

/** Sessions of that name that hold an advisory lock: a reconnected holder shows up before it has taken it back. */
const lockHolders = (name: string) =>
  admin<Array<{ pid: number }>>`
    SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
    WHERE a.application_name = ${`edgewise actor host ${name}`} AND l.locktype = 'advisory' AND l.granted`;

test("one holder per schema: a second is refused and told who holds it; another schema is free; release frees it", async () => {
  const [a, b] = [await freshSchema("lease_a"), await freshSchema("lease_b")];
  const onLost = () => {};
  const first = await acquireActorHostLease({ url: TEST_DATABASE_URL, schema: a, holder: "node-1", onLost });
  const error = await edgewiseRejection(
    acquireActorHostLease({ url: TEST_DATABASE_URL, schema: a, holder: "node-2", onLost }),
  );
  expect(error.code).toBe("config.invalid");
  expect(error.message).toContain("another node hosts the actors of this database");
  expect(error.message).toContain("edgewise actor host node-1");
  expect(error.message).toContain("ACTOR_HOST_URL");
  expect((await holders("node-2")).length).toBe(0); // the refused one closed its connection

  const elsewhere = await acquireActorHostLease({
    url: TEST_DATABASE_URL,
    schema: b,
    holder: "node-3",
    onLost,
  });
  await first.release();
  const second = await acquireActorHostLease({ url: TEST_DATABASE_URL, schema: a, holder: "node-2", onLost });
  await second.release();
  await elsewhere.release();
});

test("a holder whose connection broke takes the lease back, unless another took it first: then it is told", async () => {
  const schema = await freshSchema("lease_lost");
  const lost: EdgewiseError[] = [];
  const first = await acquireActorHostLease({
    url: TEST_DATABASE_URL,
    schema,
    holder: "flaky",
    checkEveryMs: 50,
    onLost: (error) => lost.push(error),
  });
  // Its connection is cut (a Postgres restart, a network fault): it reconnects and holds the lease again. A new
  // session must hold it: the old one stays listed, lock and all, until its process has exited.
  const [cut] = await lockHolders("flaky");
  await admin`SELECT pg_terminate_backend(${cut?.pid ?? 0}::int)`;
  await eventually(
    async () => (await lockHolders("flaky")).some(({ pid }) => pid !== cut?.pid),
    "the holder to take the lease back",
  );
  await edgewiseRejection(
    acquireActorHostLease({ url: TEST_DATABASE_URL, schema, holder: "late", onLost: () => {} }),
  );

  // Cut again, and another node takes the lock in the gap. Its connection is open before the cut, and it locks
  // the moment the old session is gone, well before the first holder's next check (50 ms) could reconnect.
  const usurper = await connect({
    url: TEST_DATABASE_URL,
    max: 1,
    schema,
    applicationName: "edgewise actor host usurper",
  });
  await usurper`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'edgewise actor host flaky'`;
  // Asked back to back (no sleep: pg_terminate_backend's own wait polls every 100 ms, longer than that check).
  let taken = false;
  for (const deadline = Date.now() + 2_000; !taken && Date.now() < deadline; ) {
    const [row] = await usurper<Array<{ taken: boolean }>>`
      SELECT pg_try_advisory_lock(${LEASE_CLASS}, hashtext(current_schema())) AS taken`;
    taken = row?.taken === true;
  }
  expect(taken).toBe(true);
  await eventually(async () => lost.length === 1, "the first holder to learn it lost the lease");
  expect(lost[0]?.message).toContain("edgewise actor host usurper");
  await first.release();
  await usurper.end();
}, 20_000);

test("a second node hosting actors on the same database is refused at start; a gateway in front is not", async () => {
  const running = await startCommerceNode("lease_node");
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-lease-"));
  try {
    const config = {
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: TEST_DATABASE_URL,
      EDGEWISE_DATA_DIR: join(dataDir, "second"),
      JWT_SECRET: running.jwtSecret,
      QSTASH_URL: running.node.brokerUrl,
      QSTASH_TOKEN: running.node.broker?.token ?? "",
      QSTASH_CURRENT_SIGNING_KEY: running.node.broker?.currentSigningKey ?? "",
      QSTASH_NEXT_SIGNING_KEY: running.node.broker?.nextSigningKey ?? "",
    };
    const error = await edgewiseRejection(
      startNode({ config: parseConfig(config), ...referenceSystem(), schema: running.schema, log: () => {} }),
    );
    expect(error.message).toContain("another node hosts the actors of this database");

    // A gateway (its actors on the first node) may run beside it: it takes no lease.
    const gateway = await startNode({
      config: parseConfig({
        ...config,
        EDGEWISE_DATA_DIR: join(dataDir, "gateway"),
        ACTOR_HOST_URL: running.node.url,
        ACTOR_HOST_SECRET: "a-shared-secret-of-at-least-32-characters",
      }),
      ...referenceSystem(),
      schema: running.schema,
      log: () => {},
    });
    await gateway.stop();
  } finally {
    await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);

test("a refusal names the holder in this database, not one on a schema of the same name in another database", async () => {
  const schema = await freshSchema("lease_otherdb");
  const otherDb = `edgewise_lease_${crypto.randomUUID().slice(0, 8)}`;
  await admin.unsafe(`CREATE DATABASE ${otherDb}`);
  const otherUrl = TEST_DATABASE_URL.replace(/\/[^/?]+(\?|$)/, `/${otherDb}$1`);
  const leases = [];
  try {
    // Advisory locks are per database: each takes its own lease, but pg_locks lists both with the same keys.
    leases.push(
      await acquireActorHostLease({ url: otherUrl, schema, holder: "elsewhere", onLost: () => {} }),
    );
    leases.push(
      await acquireActorHostLease({ url: TEST_DATABASE_URL, schema, holder: "here", onLost: () => {} }),
    );
    const refused = await edgewiseRejection(
      acquireActorHostLease({ url: TEST_DATABASE_URL, schema, holder: "second", onLost: () => {} }),
    );
    expect(refused.message).toContain("edgewise actor host here");
    expect(refused.message).not.toContain("elsewhere");
  } finally {
    for (const lease of leases) await lease.release();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${otherDb} WITH (FORCE)`);
  }
});

const onLost = () => {};
test("the lease's open transaction holds back no vacuum: no snapshot (backend_xmin) between its checks", async () => {
  const schema = await freshSchema("lease_xmin");
  const lease = await acquireActorHostLease({
    url: TEST_DATABASE_URL,
    schema,
    holder: "xmin",
    checkEveryMs: 50,
    onLost,
  });
  try {
    await Bun.sleep(300); // a few checks, each a statement in that transaction
    // Sampled between two checks (while one runs, its statement has a snapshot of its own).
    let idle: Array<{ xmin: string | null }> = [];
    for (let i = 0; i < 50 && idle.length === 0; i++)
      idle = await admin<Array<{ xmin: string | null }>>`
        SELECT backend_xmin::text AS xmin FROM pg_stat_activity
        WHERE application_name = 'edgewise actor host xmin' AND state = 'idle in transaction'`;
    expect(idle.length).toBe(1);
    expect(idle[0]?.xmin).toBeNull();
  } finally {
    await lease.release();
  }
});

test("a server's idle_in_transaction_session_timeout does not end the lease's transaction, so nobody else takes it", async () => {
  const schema = await freshSchema("lease_idle_tx");
  // As a managed Postgres, or a role (ALTER ROLE … SET), may set it for every session: here as a startup parameter.
  const url = `${TEST_DATABASE_URL}${TEST_DATABASE_URL.includes("?") ? "&" : "?"}idle_in_transaction_session_timeout=200`;
  const lost: EdgewiseError[] = [];
  const lease = await acquireActorHostLease({
    url,
    schema,
    holder: "idle-tx",
    checkEveryMs: 60_000,
    onLost: (error) => lost.push(error),
  });
  try {
    await Bun.sleep(600); // three times the timeout, and no check in between to take it back
    const refused = await edgewiseRejection(
      acquireActorHostLease({ url: TEST_DATABASE_URL, schema, holder: "idle-tx-second", onLost }),
    );
    expect(refused.message).toContain("edgewise actor host idle-tx");
    expect(lost).toEqual([]);
  } finally {
    await lease.release();
  }
});

// A check that fails while its connection lives (a cancel, a role's statement_timeout) aborts the lease's
// transaction; rolling that back whole freed the lock until the next check, and a second host could start.
test("a check cancelled on a live connection keeps the lease: no second host gets in meanwhile", async () => {
  const schema = await freshSchema("lease_cancel");
  let lost = false;
  const lease = await acquireActorHostLease({
    url: TEST_DATABASE_URL,
    schema,
    holder: "cancelled",
    // Checks far apart: without the fix the lock was free from a cancelled check to the next one.
    checkEveryMs: 50,
    onLost: () => {
      lost = true;
    },
  });
  const [row] = await admin<Array<{ pid: number }>>`
    SELECT pid FROM pg_stat_activity WHERE application_name = 'edgewise actor host cancelled'`;
  const pid = row?.pid as number;
  let cancelled = 0;
  let secondIn = 0;
  try {
    const until = Date.now() + 3_000;
    while (Date.now() < until && secondIn === 0) {
      for (let i = 0; i < 20; i++) {
        const [hit] = await admin<Array<{ ok: boolean }>>`SELECT pg_cancel_backend(${pid}) AS ok`;
        if (hit?.ok) cancelled++;
      }
      const second = await acquireActorHostLease({
        url: TEST_DATABASE_URL,
        schema,
        holder: "second",
        onLost: () => {},
      }).catch(() => undefined);
      if (second) {
        secondIn++;
        await second.release();
      }
    }
  } finally {
    await lease.release();
  }
  expect(cancelled).toBeGreaterThan(0);
  expect(secondIn).toBe(0);
  expect(lost).toBe(false);
}, 30_000);
