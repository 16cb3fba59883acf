// The actor-host lease behind a real PgBouncer in transaction pooling mode: one holder, and none left by a dead one.
import { describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_DATABASE_URL } from "../test/broker/helpers.ts";
import { eventually } from "../test/commerce/client.ts";
import { edgewiseRejection } from "../test/support/errors.ts";
import { pgbouncerBinary, usePooledSchema } from "../test/support/pgbouncer.ts";
import { acquireActorHostLease } from "./actor-host-lease.ts";

const onLost = () => {};

describe.skipIf(!pgbouncerBinary)("the actor-host lease through a transaction pooler", () => {
  const fixture = usePooledSchema("lease_pooler");
  const { schema } = fixture;

  test("a second node is refused, through the pooler or direct, and a released lease is free again", async () => {
    // A session-level lock stayed on the pooler's server connection: the next client that got it locked again.
    const first = await acquireActorHostLease({ url: fixture.pooler.url, holder: "pooled-1", onLost });
    const pooled = await edgewiseRejection(
      acquireActorHostLease({ url: fixture.pooler.url, holder: "pooled-2", onLost }),
    );
    expect(pooled.message).toContain("another node hosts the actors of this database");
    expect(pooled.message).toContain("edgewise actor host pooled-1");
    await edgewiseRejection(
      acquireActorHostLease({ url: TEST_DATABASE_URL, schema, holder: "direct", onLost }),
    );
    await first.release();
    const second = await acquireActorHostLease({ url: fixture.pooler.url, holder: "pooled-2", onLost });
    await second.release();
  }, 20_000);

  test("a holder killed with SIGKILL leaves no lease behind on the pooler's server connection", async () => {
    const script = join(import.meta.dir, `.lease-holder-${process.pid}.ts`);
    writeFileSync(
      script,
      `import { acquireActorHostLease } from ${JSON.stringify(join(import.meta.dir, "actor-host-lease.ts"))};
await acquireActorHostLease({ url: ${JSON.stringify(fixture.pooler.url)}, holder: "doomed", onLost: () => {} });
console.log("taken");
setInterval(() => {}, 1000);
`,
    );
    const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = child.stdout.getReader();
      const { value } = await Promise.race([
        reader.read(),
        Bun.sleep(10_000).then(() => ({ value: undefined })),
      ]);
      expect(new TextDecoder().decode(value)).toContain("taken");
      child.kill("SIGKILL");
      await child.exited;
      // PgBouncer kept a session lock on its server connection for as long as it kept that connection (10 min idle).
      // Asked directly: through the pooler, the next client may get that very connection, and lock again.
      let next: Awaited<ReturnType<typeof acquireActorHostLease>> | undefined;
      await eventually(
        async () => {
          next = await acquireActorHostLease({
            url: TEST_DATABASE_URL,
            schema,
            holder: "after",
            onLost,
          }).catch(() => undefined);
          return next !== undefined;
        },
        "the dead holder's lease to be free",
        5_000,
      );
      await next?.release();
    } finally {
      child.kill("SIGKILL");
      rmSync(script, { force: true });
    }
  }, 30_000);
});
