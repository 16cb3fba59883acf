// The embedded trace store (one row per trace per batch) and the processor that feeds it (buffered, chunked).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { openBunSqlite } from "../../../actors/hosts/local/sqlite-bun.ts";
import { TraceStoreProcessor } from "./processor.ts";
import { type StoredSpan, TraceStore } from "./store.ts";

const hex = (bytes: number) =>
  [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");

const span = (
  traceId: string,
  name: string,
  startMs: number,
  more: Partial<StoredSpan> = {},
): StoredSpan => ({
  traceId,
  spanId: hex(8),
  name,
  kind: "INTERNAL",
  startMs,
  durationMs: 1,
  status: "UNSET",
  attributes: { n: name },
  links: [],
  ...more,
});

describe("trace store", () => {
  test("a trace written over several batches reads back whole, by start time, with its summary", () => {
    const store = new TraceStore(openBunSqlite(":memory:", "NORMAL"));
    const [a, b] = [hex(16), hex(16)];
    const root = span(a, "POST /v1/orders", 10, { kind: "SERVER" });
    store.write([
      span(a, "turn order Place", 12, { parentSpanId: root.spanId }),
      span(b, "GET /v1/orders/:id", 11, { parentSpanId: hex(8), status: "ERROR" }),
      root,
    ]);
    store.write([span(a, "turn inventory OrderPlaced", 30, { parentSpanId: root.spanId, durationMs: 5 })]);
    expect(store.trace(a).map((s) => s.name)).toEqual([
      "POST /v1/orders",
      "turn order Place",
      "turn inventory OrderPlaced",
    ]);
    expect(store.trace(a)[0]).toEqual(root);
    const [latest, other] = store.recentTraces();
    expect(latest).toEqual({
      traceId: a,
      rootName: "POST /v1/orders",
      startMs: 10,
      durationMs: 25,
      spanCount: 3,
      errorCount: 0,
    });
    // No span without a parent: the earliest span names the trace.
    expect(other).toMatchObject({ traceId: b, rootName: "GET /v1/orders/:id", spanCount: 1, errorCount: 1 });
    expect(store.count()).toBe(4);
    expect(store.trace(hex(16))).toEqual([]);
    store.close();
  });

  test("the bound counts spans, also inside a row that holds several", () => {
    const store = new TraceStore(openBunSqlite(":memory:", "NORMAL"), { maxSpans: 4 });
    const [a, b] = [hex(16), hex(16)];
    store.write([1, 2, 3].map((i) => span(a, `a${i}`, i)));
    store.write([4, 5].map((i) => span(b, `b${i}`, i)));
    expect(store.count()).toBe(4);
    expect(store.trace(a).map((s) => s.name)).toEqual(["a2", "a3"]);
    expect(store.recentTraces().find((t) => t.traceId === a)).toMatchObject({ spanCount: 2, startMs: 2 });
    store.write([6, 7, 8, 9].map((i) => span(b, `b${i}`, i)));
    expect(store.trace(a)).toEqual([]);
    expect(store.trace(b).map((s) => s.name)).toEqual(["b6", "b7", "b8", "b9"]);
    expect(store.count()).toBe(4);
    store.close();
  });

  test("a store file from the older layout is replaced, and a reopened store keeps counting", () => {
    const dir = mkdtempSync(join(tmpdir(), "edgewise-trace-store-"));
    const path = join(dir, "traces.db");
    const old = openBunSqlite(path, "NORMAL");
    old.exec("CREATE TABLE trace_spans (seq INTEGER PRIMARY KEY, span TEXT)");
    old.close();
    const first = new TraceStore(openBunSqlite(path, "NORMAL"), { maxSpans: 3 });
    const a = hex(16);
    first.write([span(a, "a1", 1), span(a, "a2", 2)]);
    first.close();
    const second = new TraceStore(openBunSqlite(path, "NORMAL"), { maxSpans: 3 });
    second.write([span(a, "a3", 3), span(a, "a4", 4)]);
    expect(second.trace(a).map((s) => s.name)).toEqual(["a2", "a3", "a4"]);
    second.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("trace store processor", () => {
  const readable = (traceId: string, name: string): ReadableSpan =>
    ({
      name,
      kind: 0,
      spanContext: () => ({ traceId, spanId: hex(8), traceFlags: 1 }),
      startTime: [1, 0],
      duration: [0, 1_000_000],
      status: { code: 0 },
      attributes: { name },
      links: [],
      events: [],
    }) as unknown as ReadableSpan;

  test("ended spans wait for the timer; a timed write takes at most maxBatch, the rest follow", async () => {
    const store = new TraceStore(openBunSqlite(":memory:", "NORMAL"));
    const batches: number[] = [];
    const write = store.write.bind(store);
    store.write = (spans) => {
      batches.push(spans.length);
      write(spans);
    };
    const processor = new TraceStoreProcessor(store, { flushIntervalMs: 5, maxBatch: 4 });
    const traceId = hex(16);
    for (let i = 0; i < 10; i++) processor.onEnd(readable(traceId, `s${i}`));
    expect(store.count()).toBe(0);
    // The timer's pass and the two after it: waited for, since on a busy machine they can run later than any sleep.
    const deadline = Date.now() + 2_000;
    while (batches.reduce((sum, n) => sum + n, 0) < 10 && Date.now() < deadline) await Bun.sleep(5);
    expect(batches).toEqual([4, 4, 2]);
    expect(store.trace(traceId).map((s) => s.name)).toEqual(Array.from({ length: 10 }, (_, i) => `s${i}`));
    expect(store.trace(traceId)[0]).toMatchObject({ kind: "INTERNAL", startMs: 1000, durationMs: 1 });
    await processor.shutdown();
    store.close();
  });

  test("flushNow writes everything at once; past maxBuffered spans are dropped and counted", async () => {
    const store = new TraceStore(openBunSqlite(":memory:", "NORMAL"));
    const processor = new TraceStoreProcessor(store, {
      flushIntervalMs: 60_000,
      maxBuffered: 3,
      maxBatch: 1,
    });
    const traceId = hex(16);
    for (let i = 0; i < 5; i++) processor.onEnd(readable(traceId, `s${i}`));
    processor.flushNow();
    expect(store.count()).toBe(3);
    expect(processor.dropped).toBe(2);
    await processor.shutdown();
    processor.onEnd(readable(traceId, "late"));
    processor.flushNow();
    expect(store.count()).toBe(3);
    store.close();
  });
});
