// pg-boss on Postgres: insert in batches; worker loops that fetch a batch, count it, and complete it.
import PgBoss from "pg-boss";
import postgres from "postgres";
import { log, now, type Payload, type Phases, type Plan, type Recorder, runPhases } from "./common.ts";

export interface PgBossOptions {
  databaseUrl: string;
  /** Worker loops, each with one fetch in flight (pg-boss 10: one `work()` call each). */
  workers: number;
  /** Jobs per fetch (`batchSize`). Jobs in flight = workers × batchSize. */
  batchSize: number;
}

export interface PgBossReport extends Phases {
  setup: Record<string, unknown>;
  check: Record<string, unknown>;
}

/** pg-boss's minimum polling interval: an idle worker sleeps this long unless woken (`notifyWorker`). */
const IDLE_POLL_MS = 500;

export async function runPgBoss(plan: Plan, options: PgBossOptions): Promise<PgBossReport> {
  const schema = `pgboss_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const name = `bench-${options.workers}x${options.batchSize}`;
  const pad = plan.pad;
  // No maintenance or cron timers during the run; the pool is pg-boss's default size (10).
  const boss = new PgBoss({
    connectionString: options.databaseUrl,
    schema,
    supervise: false,
    schedule: false,
    max: 10,
  });
  boss.on("error", (error) => log(`[pg-boss] ${String(error)}`));
  let current: Recorder | undefined;
  let processed = 0;
  let completeErrors = 0;
  let stopping = false;
  const completions = new Set<Promise<void>>();
  const loops: Promise<void>[] = [];
  /** Per loop, as pg-boss's Worker keeps it: a notification during a fetch cancels the idle sleep after it. */
  const sleepers = new Set<{ notified: boolean; wake: (() => void) | undefined }>();
  const notifyAll = () => {
    for (const sleeper of sleepers) {
      sleeper.notified = true;
      sleeper.wake?.();
    }
  };

  // The loop of pg-boss 10's own work(): fetch → handler → complete, where complete is not awaited before the
  // next fetch. The only difference: the completion's promise is observed, to time it.
  async function workLoop(): Promise<void> {
    const self = { notified: false, wake: undefined as (() => void) | undefined };
    sleepers.add(self);
    while (!stopping) {
      self.notified = false;
      const jobs = await boss.fetch<Payload>(name, { batchSize: options.batchSize });
      if (jobs.length === 0) {
        if (!self.notified && !stopping) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, IDLE_POLL_MS);
            function done() {
              clearTimeout(timer);
              self.wake = undefined;
              resolve();
            }
            self.wake = done;
          });
        }
        continue;
      }
      processed += jobs.length;
      const completion = boss
        .complete(
          name,
          jobs.map((job) => job.id),
        )
        .then(
          () => {
            const at = now();
            for (const { data } of jobs) current?.complete(data.r, data.i, data.t, at);
          },
          (error) => {
            completeErrors++;
            log(`[pg-boss] complete: ${String(error)}`);
          },
        );
      completions.add(completion);
      void completion.finally(() => completions.delete(completion));
    }
  }

  try {
    await boss.start();
    await boss.createQueue(name);
    for (let w = 0; w < options.workers; w++) loops.push(workLoop());
    let sent = 0;
    const phases = await runPhases(
      `pg-boss ${options.workers}x${options.batchSize}`,
      plan,
      async (r, from, count) => {
        sent += count;
        const t = now();
        await boss.insert(
          Array.from({ length: count }, (_, k) => ({ name, data: { r, i: from + k, t, pad } })),
        );
        // As boss.notifyWorker(id) would: an idle worker fetches now instead of at its next poll.
        notifyAll();
      },
      (recorder) => {
        current = recorder;
      },
    );
    stopping = true;
    notifyAll();
    await Promise.all(loops);
    await Promise.all([...completions]);
    const states = await boss
      .getDb()
      .executeSql(`SELECT state, count(*)::int AS n FROM ${schema}.job WHERE name = $1 GROUP BY state`, [
        name,
      ]);
    const byState = Object.fromEntries(states.rows.map((row) => [row.state, row.n]));
    const check = {
      messagesSent: sent,
      handlerRuns: processed,
      jobsByState: byState,
      completeErrors,
      exactlyOnce:
        processed === sent &&
        byState.completed === sent &&
        Object.keys(byState).length === 1 &&
        phases.loaded.duplicates + phases.unloaded.duplicates + phases.warmup.duplicates === 0,
    };
    log(`pg-boss ${options.workers}x${options.batchSize} check: ${JSON.stringify(check)}`);
    return {
      ...phases,
      setup: {
        version: "pg-boss 10.4.2 (the newest that supports Node 20; 11+ needs Node 22)",
        schema,
        workers: options.workers,
        batchSize: options.batchSize,
        jobsPerInsert: plan.bounds.batch,
        pool: 10,
        options: "supervise: false, schedule: false (no maintenance or cron during the run)",
        worker:
          "pg-boss 10's work() loop, inlined: fetch(batchSize) → handler → complete(ids) not awaited before the next fetch; an idle worker polls every 500 ms (pg-boss's minimum) and is woken after each insert, like notifyWorker()",
        latency: "from just before boss.insert() to the resolution of boss.complete() for the job's batch",
      },
      check,
    };
  } finally {
    stopping = true;
    notifyAll();
    await Promise.allSettled(loops);
    await boss.stop({ graceful: false, wait: true, close: true }).catch(() => {});
    const admin = postgres(options.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
    } finally {
      await admin.end({ timeout: 5 });
    }
  }
}
