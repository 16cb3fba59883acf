// EDGEWISE_TRACE_SAMPLE_READS and EDGEWISE_TRACE_SAMPLE_WRITES, as the node reads them; the trace store's failures.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { trace } from "@opentelemetry/api";
import { openBunSqlite } from "../actors/hosts/local/sqlite-bun.ts";
import {
  defaultReadSampling,
  defaultWriteSampling,
  readSamplingFromEnv,
  startNodeTracing,
  writeSamplingFromEnv,
} from "./tracing.ts";

const settings = [
  {
    name: "EDGEWISE_TRACE_SAMPLE_READS",
    what: "reads",
    read: readSamplingFromEnv,
    fallback: defaultReadSampling,
  },
  {
    name: "EDGEWISE_TRACE_SAMPLE_WRITES",
    what: "writes",
    read: writeSamplingFromEnv,
    fallback: defaultWriteSampling,
  },
];

for (const { name, what, read, fallback } of settings) {
  describe(name, () => {
    test("defaults to 10 a second; takes a share from 0 to 1 or a rate; refuses anything else, naming the variable", () => {
      expect(read(undefined)).toEqual(fallback);
      expect(fallback).toEqual({ perSecond: 10 });
      expect(read(" ")).toEqual(fallback);
      expect(read("0")).toEqual({ ratio: 0 });
      expect(read("1")).toEqual({ ratio: 1 });
      expect(read("0.25")).toEqual({ ratio: 0.25 });
      expect(read("50/s")).toEqual({ perSecond: 50 });
      expect(read("2.5 / s")).toEqual({ perSecond: 2.5 });
      for (const bad of ["abc", "2", "-0.1", "10%", "NaN", "10/m", "/s"]) {
        expect(() => read(bad)).toThrow(`${name} must be a share of ${what} from 0 to 1`);
      }
    });
  });
}

describe("startNodeTracing", () => {
  /** A trace store whose writes fail once `full` is set, as SQLite's do on a full disk. */
  const failingStore = (dataDir: string) => {
    const state = { full: false };
    const openDb = (path: string, sync: "FULL" | "NORMAL") => {
      const db = openBunSqlite(path, sync);
      return {
        exec: (sql: string) => db.exec(sql),
        prepare: (sql: string) => db.prepare(sql),
        close: () => db.close(),
        transaction: <T>(fn: () => T): T => {
          if (state.full) throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
          return db.transaction(fn);
        },
      };
    };
    return { state, options: { dataDir, openDb } };
  };

  test("a failed write is told to onError (the node's logger), or is one line on stderr, never a stack", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "edgewise-trace-store-"));
    const errors: unknown[] = [];
    const printed: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void printed.push(args);
    try {
      for (const onError of [(error: unknown) => void errors.push(error), undefined]) {
        const { state, options } = failingStore(dataDir);
        const tracing = startNodeTracing({ ...options, ...(onError ? { onError } : {}) });
        state.full = true;
        trace.getTracer("store-test").startSpan("a span").end();
        await tracing.flush();
        await tracing.stop();
      }
    } finally {
      console.error = original;
      rmSync(dataDir, { recursive: true, force: true });
    }
    expect(errors.map((error) => (error as Error).message)).toEqual(["database or disk is full"]);
    // Before: ("[edgewise] trace store: a write failed", error), which Bun prints as the stack and source lines.
    expect(printed).toEqual([["[edgewise] trace store: a write failed: database or disk is full"]]);
  });
});
