// The delivery endpoint alone: signed deliveries handed to a node's app in process, CPU µs and latency per delivery.
//
//   npx bun bench/queue/delivery.ts                 # 20,000 deliveries, 64 in flight, 100 consumer actors
//   npx bun bench/queue/delivery.ts --deliveries 50000 --inflight 256 --tracing off
//   npx bun bench/queue/delivery.ts --through app  # through the whole gateway app, as a delivery over HTTP is
//
// What one delivery costs the node once the broker has claimed it: the signed request (as the embedded broker
// makes it), the app's middleware, the SDK's `Receiver.verify`, the consumer's turn and its SQLite FULL commit,
// and the 2xx. The broker's own SQL (publish, claim, outcome) and the producer's side are left out, so this is
// steadier than bench/queue/index.ts and shows where a change to the receiving side moves the per-message CPU.
// It needs Postgres on 127.0.0.1:5432 (database `test`) only because a node starts its broker; no message goes
// through it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import * as v from "valibot";
import { defineActor } from "../../actors/runtime/index.ts";
import { startNode } from "../../deploy/bun/node.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { percentile, round } from "./common.ts";

const { values } = parseArgs({
  options: {
    deliveries: { type: "string", default: "20000" },
    inflight: { type: "string", default: "64" },
    consumers: { type: "string", default: "100" },
    warmup: { type: "string", default: "3000" },
    payload: { type: "string", default: "256" },
    tracing: { type: "string", default: "on" },
    /** `in-process`: as the embedded broker hands its deliveries over (`app.deliverInProcess`); `app`: `app.fetch`. */
    through: { type: "string", default: "in-process" },
    database: { type: "string", default: "postgres://postgres@127.0.0.1:5432/test" },
  },
});
const deliveries = Number(values.deliveries);
const inflight = Number(values.inflight);
const consumers = Number(values.consumers);
const warmup = Number(values.warmup);
const pad = "x".repeat(Math.max(0, Number(values.payload) - 40));
if (values.tracing === "off") process.env.EDGEWISE_TRACING = "off";

let applied = 0;
const consumer = defineActor({
  type: "bench-consumer",
  state: v.object({ count: v.pipe(v.number(), v.integer()) }),
  initial: () => ({ count: 0 }),
  messages: { Record: v.object({ i: v.pipe(v.number(), v.integer()), pad: v.string() }) },
  handlers: {
    Record(ctx) {
      ctx.state.count += 1;
      applied++;
    },
  },
});

const dir = mkdtempSync(join(tmpdir(), "edgewise-delivery-bench-"));
const schema = `bench_delivery_${process.pid}`;
const node = await startNode({
  config: parseConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    EDGEWISE_DATA_DIR: dir,
    DATABASE_URL: values.database,
    EDGEWISE_SQLITE_SYNC: "FULL",
  }),
  actors: [consumer],
  schema,
  log: () => {},
});
const sign = createSigner((node.broker as { currentSigningKey: string }).currentSigningKey);
const handle =
  values.through === "app" || !node.app.deliverInProcess
    ? (request: Request) => node.app.fetch(request, { remoteAddress: "127.0.0.1" })
    : node.app.deliverInProcess;
const encoder = new TextEncoder();

/** One delivery as the embedded broker sends it (deploy/local/broker/deliver.ts), answered by the app in process. */
async function deliver(i: number): Promise<number> {
  const key = `c${i % consumers}`;
  const envelope = createEnvelope({
    type: "Record",
    source: "bench",
    target: `bench-consumer/${key}`,
    data: { i, pad },
  });
  const url = `${node.publicUrl}/_edgewise/deliver/bench-consumer/${key}`;
  const body = encoder.encode(JSON.stringify(envelope));
  const headers = new Headers({
    "content-type": "application/json",
    "upstash-message-id": `msg_${i}`,
    "upstash-retried": "0",
    "user-agent": "Upstash-QStash",
    "content-length": String(body.byteLength),
  });
  headers.set("upstash-signature", await sign(url, body));
  const started = performance.now();
  const response = await handle(new Request(url, { method: "POST", headers, body }), {
    remoteAddress: "127.0.0.1",
  });
  if (response.status !== 200)
    throw new Error(`delivery ${i} answered ${response.status}: ${await response.text()}`);
  await response.body?.cancel();
  return performance.now() - started;
}

async function run(count: number, offset: number) {
  const latencies = new Float64Array(count);
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inflight, count) }, async () => {
      while (next < count) {
        const i = next++;
        latencies[i] = await deliver(offset + i);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  latencies.sort();
  return {
    deliveries: count,
    seconds: round(seconds),
    deliveriesPerSecond: Math.round(count / seconds),
    cpuUsPerDelivery: round((used.user + used.system) / count, 1),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
  };
}

try {
  await run(warmup, 0);
  const measured = await run(deliveries, warmup);
  const expected = warmup + deliveries;
  let stored = 0;
  for (let c = 0; c < consumers; c++) {
    stored +=
      (node.host!.inspect({ type: "bench-consumer", key: `c${c}` }).state as { count: number } | undefined)
        ?.count ?? 0;
  }
  console.log(
    JSON.stringify(
      {
        bench: "queue/delivery",
        setup: {
          inflight,
          consumers,
          payloadBytes: Number(values.payload),
          tracing: values.tracing,
          through: values.through,
          path: "signed Request → delivery route (Receiver.verify, consumer turn, SQLite FULL commit) → 2xx",
        },
        measured,
        check: { expected, applied, stored, exactlyOnce: applied === expected && stored === expected },
      },
      null,
      2,
    ),
  );
} finally {
  await node.stop();
  const admin = postgres(values.database, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
