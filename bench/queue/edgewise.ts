// Edgewise end to end: producer turn → outbox → relay → broker /v2/batch → signed delivery → consumer commit.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import * as v from "valibot";
import { defineActor, type TurnCommit } from "../../actors/runtime/index.ts";
import { startNode } from "../../deploy/bun/node.ts";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN } from "../../deploy/local/broker/index.ts";
import { parseConfig } from "../../shared/config/index.ts";
import {
  log,
  now,
  type Payload,
  type Phases,
  type Plan,
  type Recorder,
  runPhases,
  trackedPids,
} from "./common.ts";

export interface EdgewiseOptions {
  databaseUrl: string;
  /** Consumer actors; message i goes to consumer `c{i % consumers}`. */
  consumers: number;
  /** Producer actors the driver's asks rotate over (the relay keeps order per producer). */
  producers: number;
  /**
   * "embedded" (startNode's default: the broker in the node's process) or "process": the same broker started
   * with deploy/local/broker/main.ts as a process of its own, reached through QSTASH_URL (as a remote QStash is).
   */
  broker: "embedded" | "process";
}

const repoRoot = join(import.meta.dir, "..", "..");

interface BrokerProcess {
  url: string;
  stop(): Promise<void>;
}

/** Starts deploy/local/broker/main.ts on a free port and waits for the URL it prints. */
async function startBrokerProcess(databaseUrl: string, schema: string): Promise<BrokerProcess> {
  const child = Bun.spawn([process.execPath, join(repoRoot, "deploy/local/broker/main.ts")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      QSTASH_PORT: "0",
      QSTASH_HOST: "127.0.0.1",
      DATABASE_URL: databaseUrl,
      QSTASH_DB_SCHEMA: schema,
    },
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!/QSTASH_URL=(\S+)/.test(text)) {
    if (Date.now() > deadline) {
      child.kill();
      throw new Error("the broker process did not print its URL within 30 s");
    }
    const { done, value } = await reader.read();
    if (done) throw new Error(`the broker process exited: ${text}`);
    text += decoder.decode(value);
  }
  reader.releaseLock();
  trackedPids.add(child.pid);
  void child.stdout.pipeTo(new WritableStream()).catch(() => {});
  return {
    url: /QSTASH_URL=(\S+)/.exec(text)![1]!,
    async stop() {
      trackedPids.delete(child.pid);
      child.kill("SIGTERM");
      const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
      if (!exited) child.kill("SIGKILL");
    },
  };
}

export interface EdgewiseReport extends Phases {
  setup: Record<string, unknown>;
  check: Record<string, unknown>;
}

export async function runEdgewise(plan: Plan, options: EdgewiseOptions): Promise<EdgewiseReport> {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-queue-bench-"));
  const schema = `bench_queue_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const pad = plan.pad;
  const { consumers, producers } = options;

  /** Handled, not yet committed: envelope id → payload. The commit hook below takes them out. */
  const handled = new Map<string, Payload>();
  let current: Recorder | undefined;
  let handlerRuns = 0;

  const consumer = defineActor({
    type: "bench-consumer",
    state: v.object({ count: v.pipe(v.number(), v.integer()), sum: v.number() }),
    initial: () => ({ count: 0, sum: 0 }),
    messages: {
      Record: v.object({ r: v.number(), i: v.pipe(v.number(), v.integer()), t: v.number(), pad: v.string() }),
    },
    handlers: {
      Record(ctx, data) {
        ctx.state.count += 1;
        ctx.state.sum += data.i;
        handlerRuns++;
        handled.set(ctx.message.id, data);
      },
    },
  });
  const producer = defineActor({
    type: "bench-producer",
    state: v.object({ sent: v.pipe(v.number(), v.integer()) }),
    initial: () => ({ sent: 0 }),
    messages: {
      Produce: v.object({
        r: v.number(),
        from: v.pipe(v.number(), v.integer()),
        count: v.pipe(v.number(), v.integer()),
      }),
    },
    handlers: {
      Produce(ctx, { r, from, count }) {
        for (let i = from; i < from + count; i++) {
          const payload: Payload = { r, i, t: now(), pad };
          ctx.send({ type: "bench-consumer", key: `c${i % consumers}` }, "Record", payload);
        }
        ctx.state.sent += count;
      },
    },
  });

  const brokerProcess =
    options.broker === "process" ? await startBrokerProcess(options.databaseUrl, schema) : undefined;
  const config = parseConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    EDGEWISE_DATA_DIR: dir,
    DATABASE_URL: options.databaseUrl,
    EDGEWISE_SQLITE_SYNC: "FULL",
    ...(brokerProcess
      ? {
          QSTASH_URL: brokerProcess.url,
          QSTASH_TOKEN: DEV_TOKEN,
          QSTASH_CURRENT_SIGNING_KEY: DEV_CURRENT_SIGNING_KEY,
          QSTASH_NEXT_SIGNING_KEY: DEV_NEXT_SIGNING_KEY,
        }
      : {}),
  });
  const admin = postgres(options.databaseUrl, { max: 1, onnotice: () => {} });
  const node = await startNode({
    config,
    actors: [producer, consumer],
    schema: schema,
    log: (line) => log(`[edgewise] ${line}`),
  });
  try {
    // The consumer's commit time: the store resolves a turn's commit right after its transaction (fsynced).
    const store = node.host!.store;
    const enqueue = store.enqueueCommit.bind(store);
    store.enqueueCommit = (view, commit: TurnCommit) => {
      const written = enqueue(view, commit);
      const id = commit.inbox?.id;
      const payload = id === undefined ? undefined : handled.get(id);
      if (id !== undefined && payload) {
        handled.delete(id);
        written.then(
          () => current?.complete(payload.r, payload.i, payload.t, now()),
          () => {},
        );
      }
      return written;
    };

    let expectedCount = 0;
    let expectedSum = 0;
    let asks = 0;
    const deliveredBefore = node.broker?.delivered() ?? 0;
    const phases = await runPhases(
      "edgewise",
      plan,
      async (r, from, count) => {
        expectedCount += count;
        for (let i = from; i < from + count; i++) expectedSum += i;
        await node.host!.ask({ type: "bench-producer", key: `p${asks++ % producers}` }, "Produce", {
          r,
          from,
          count,
        });
      },
      (recorder) => {
        current = recorder;
      },
    );

    // Exactly once, in durable state: every consumer's count and sum of indices, against what was sent.
    let count = 0;
    let sum = 0;
    for (let c = 0; c < consumers; c++) {
      const state = node.host!.inspect({ type: "bench-consumer", key: `c${c}` }).state as
        | { count: number; sum: number }
        | undefined;
      count += state?.count ?? 0;
      sum += state?.sum ?? 0;
    }
    let outbox = 0;
    for (let p = 0; p < producers; p++) {
      outbox += node.host!.inspect({ type: "bench-producer", key: `p${p}` }).outboxSize;
    }
    // The broker writes its DELIVERED outcome after the 2xx: give the last ones a moment to land.
    const brokerLeft = async () =>
      (
        await admin`SELECT (SELECT count(*) FROM ${admin(schema)}.qstash_messages)::int AS waiting, (SELECT count(*) FROM ${admin(schema)}.qstash_dlq)::int AS dead`
      )[0];
    let brokerRow = await brokerLeft();
    for (let tries = 0; brokerRow && brokerRow.waiting > 0 && tries < 50; tries++) {
      await Bun.sleep(100);
      brokerRow = await brokerLeft();
    }
    const deliveries = node.broker ? node.broker.delivered() - deliveredBefore : null;
    const check = {
      messagesSent: expectedCount,
      consumerCountSum: count,
      consumerIndexSumMatches: sum === expectedSum,
      handlerRuns,
      deliveriesAnswered2xx: deliveries,
      broker: options.broker,
      producerOutboxLeft: outbox,
      brokerMessagesLeft: brokerRow?.waiting ?? null,
      brokerDeadLetters: brokerRow?.dead ?? null,
      exactlyOnce:
        count === expectedCount &&
        sum === expectedSum &&
        handlerRuns === expectedCount &&
        phases.loaded.duplicates + phases.unloaded.duplicates + phases.warmup.duplicates === 0,
    };
    log(`edgewise check: ${JSON.stringify(check)}`);
    return {
      ...phases,
      setup: {
        path: "producer turn (SQLite FULL commit) → outbox relay → POST /v2/batch (@upstash/qstash Client) → broker (Postgres commit) → dispatcher claim → signed POST → Receiver.verify → consumer turn (SQLite FULL commit) → 2xx → broker outcome commit",
        node:
          options.broker === "embedded"
            ? "deploy/bun/node.ts startNode: LocalActorHost + QStashTransport + the embedded broker (deploy/local/broker) + the delivery route, all in the bench's Bun process"
            : "deploy/bun/node.ts startNode with QSTASH_URL set: LocalActorHost + QStashTransport + the delivery route in the bench's Bun process; the broker (deploy/local/broker/main.ts, same code) in a Bun process of its own",
        producers,
        consumers,
        messagesPerProducerTurn: plan.bounds.batch,
        schema: schema,
        brokerDeliveryConcurrency:
          node.broker?.deliveryConcurrency ??
          "the broker process's (QSTASH_DELIVERY_CONCURRENCY, 256 on Postgres)",
        tracing: node.tracing
          ? `on (the node's default, into its embedded trace store; writes that start a trace sampled at ${process.env.EDGEWISE_TRACE_SAMPLE_WRITES || "10/s, the default"})`
          : "off (EDGEWISE_TRACING=off)",
        relayBatchSize: 256,
        transportBatchSize: 100,
        latency:
          "from the producer's ctx.send() inside its turn (before that turn's commit) to the consumer turn's durable commit (bun:sqlite transaction with synchronous=FULL returned); the broker's own DELIVERED write comes after and is not included",
      },
      check,
    };
  } finally {
    await node.stop();
    await brokerProcess?.stop();
    try {
      await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
    } finally {
      await admin.end({ timeout: 5 });
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
