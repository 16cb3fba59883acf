// BullMQ on Redis: addBulk in chunks, one Worker at a given concurrency whose processor only counts.
import { RedisClient } from "bun";
import { type ConnectionOptions, Queue, Worker } from "bullmq";
import { log, now, type Payload, type Phases, type Plan, type Recorder, runPhases } from "./common.ts";

export interface BullmqOptions {
  redisHost: string;
  redisPort: number;
  concurrency: number;
  /** BullMQ's default client (ioredis), or Bun's built-in RedisClient through BullMQ's adapter. */
  client: "ioredis" | "bun";
}

export interface BullmqReport extends Phases {
  setup: Record<string, unknown>;
  check: Record<string, unknown>;
}

export async function runBullmq(plan: Plan, options: BullmqOptions): Promise<BullmqReport> {
  const name = `edgewise-bench-${process.pid}-${Math.random().toString(36).slice(2, 8)}-c${options.concurrency}`;
  // maxRetriesPerRequest: null is what BullMQ requires of a Worker's ioredis connection.
  const connection = (): ConnectionOptions =>
    options.client === "bun"
      ? (new RedisClient(`redis://${options.redisHost}:${options.redisPort}`) as unknown as ConnectionOptions)
      : { host: options.redisHost, port: options.redisPort, maxRetriesPerRequest: null };
  const pad = plan.pad;
  const queue = new Queue<Payload>(name, {
    connection: connection(),
    defaultJobOptions: { removeOnComplete: true, removeOnFail: false },
  });
  let current: Recorder | undefined;
  let processed = 0;
  let failed = 0;
  const worker = new Worker<Payload>(
    name,
    async () => {
      processed++;
    },
    { connection: connection(), concurrency: options.concurrency },
  );
  // "completed" fires after the worker's moveToCompleted script ran in Redis: the job is acknowledged.
  worker.on("completed", (job) => {
    const { r, i, t } = job.data;
    current?.complete(r, i, t, now());
  });
  worker.on("failed", () => {
    failed++;
  });
  worker.on("error", (error) => log(`[bullmq] worker error: ${String(error)}`));
  try {
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    let sent = 0;
    const phases = await runPhases(
      `bullmq c${options.concurrency}`,
      plan,
      async (r, from, count) => {
        sent += count;
        const t = now();
        await queue.addBulk(
          Array.from({ length: count }, (_, k) => ({ name: "m", data: { r, i: from + k, t, pad } })),
        );
      },
      (recorder) => {
        current = recorder;
      },
    );
    const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed", "prioritized");
    const left = Object.values(counts).reduce((a, b) => a + b, 0);
    const check = {
      messagesSent: sent,
      processorRuns: processed,
      failed,
      jobsLeftInRedis: counts,
      exactlyOnce:
        processed === sent &&
        left === 0 &&
        failed === 0 &&
        phases.loaded.duplicates + phases.unloaded.duplicates + phases.warmup.duplicates === 0,
    };
    log(`bullmq c${options.concurrency} check: ${JSON.stringify(check)}`);
    return {
      ...phases,
      setup: {
        queue: name,
        concurrency: options.concurrency,
        jobsPerAddBulk: plan.bounds.batch,
        jobOptions: "removeOnComplete: true (completed jobs are deleted, as BullMQ recommends in production)",
        client: "ioredis (BullMQ's default) in the bench process; Redis is its own process",
        latency:
          "from just before queue.addBulk() to the Worker's 'completed' event (after its moveToCompleted script ran in Redis)",
      },
      check,
    };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch((error) => log(`[bullmq] obliterate: ${String(error)}`));
    await queue.close();
  }
}
