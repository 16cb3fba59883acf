// The logger: one JSON line per record, its field order, levels, child bindings, trace ids and redaction.
import { describe, expect, test } from "bun:test";
import { type Context, type ContextManager, context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { ManualClock } from "../../clock/index.ts";
import { createLogger, logLevelOf } from "./index.ts";
import { captureSink } from "./sinks.ts";
import { traceIdFromTraceparent } from "./trace.ts";

const clock = new ManualClock(Date.UTC(2026, 0, 2, 3, 4, 5, 6));

describe("createLogger", () => {
  test("writes one JSON line: time, level, msg, the well-known ids, then free fields", () => {
    const capture = captureSink();
    const log = createLogger({ sink: capture.sink, clock, fields: { service: "edge" } });
    log
      .child({ request_id: "req-1", actor: { type: "order", key: "o-1" }, message_id: "m-1" })
      .info("turn done", { durationMs: 3, trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" });
    expect(capture.lines).toHaveLength(1);
    const line = capture.lines[0] as string;
    expect(line).not.toContain("\n");
    expect(Object.keys(JSON.parse(line))).toEqual([
      "time",
      "level",
      "msg",
      "trace_id",
      "request_id",
      "actor",
      "message_id",
      "service",
      "durationMs",
    ]);
    expect(JSON.parse(line)).toMatchObject({
      time: "2026-01-02T03:04:05.006Z",
      level: "info",
      msg: "turn done",
      actor: "order/o-1",
    });
  });

  test("a client's string cannot end a line: separators and C1 controls are escaped, and read back the same", () => {
    const capture = captureSink();
    const log = createLogger({ sink: capture.sink, clock });
    // U+2028 and U+2029 end a line to JavaScript's source rules and to Python's splitlines, NEL (U+0085) too;
    // CSI (U+009B) starts a terminal's control sequence. JSON.stringify writes all of them raw.
    const sku = 'a\u2028"level":"error"\u2029b\u0085c\u009b31md\u007fe\n';
    log.info(`no route for GET /${sku}`, { sku, nested: { sku } });
    expect(capture.lines).toHaveLength(1);
    const line = capture.lines[0] as string;
    expect(line).not.toMatch(/[\n\r\u007f-\u009f\u2028\u2029]/);
    expect(line.split(/\r\n|[\n\r\u0085\u2028\u2029]/)).toHaveLength(1);
    const record = JSON.parse(line);
    expect(record).toMatchObject({ level: "info", msg: `no route for GET /${sku}`, sku, nested: { sku } });
  });

  test("levels below LOG_LEVEL are not written; a reserved field name cannot overwrite the record's own", () => {
    const capture = captureSink();
    const log = createLogger({ level: "warn", sink: capture.sink, clock });
    log.debug("d");
    log.info("i");
    log.warn("w", { level: "debug", msg: "spoofed", time: "then" });
    log.error("e");
    expect(capture.records().map((record) => [record.level, record.msg])).toEqual([
      ["warn", "w"],
      ["error", "e"],
    ]);
    expect(log.isEnabled("info")).toBe(false);
    expect(logLevelOf("DEBUG")).toBe("debug");
    expect(logLevelOf("loud", "warn")).toBe("warn");
  });

  test("children bind fields without changing their parent", () => {
    const capture = captureSink();
    const root = createLogger({ sink: capture.sink, clock });
    const child = root.child({ request_id: "a" });
    child.child({ request_id: "b", step: 2 }).info("inner");
    child.info("outer");
    root.info("root");
    expect(capture.records().map((record) => [record.msg, record.request_id, record.step])).toEqual([
      ["inner", "b", 2],
      ["outer", "a", undefined],
      ["root", undefined, undefined],
    ]);
  });

  test("secrets are redacted in fields and masked in the message", () => {
    const capture = captureSink();
    const jwt =
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsInNjb3BlIjoiYWRtaW4ifQ.Zm9yZ2VkLXNpZ25hdHVyZS1ieXRlcw";
    createLogger({ sink: capture.sink, clock })
      .child({ headers: { authorization: `Bearer ${jwt}` } })
      .warn(`refused Bearer ${jwt}`, { config: { JWT_SECRET: "s3cret", nested: { apiKey: "k" } } });
    const line = capture.lines[0] as string;
    expect(line).not.toContain(jwt);
    expect(line).not.toContain("s3cret");
    expect(JSON.parse(line)).toMatchObject({
      msg: "refused Bearer [redacted]",
      headers: { authorization: "[redacted]" },
      config: { JWT_SECRET: "[redacted]", nested: { apiKey: "[redacted]" } },
    });
  });

  test("a throwing sink or an unserializable field never throws out of a log call", () => {
    const log = createLogger({
      sink: () => {
        throw new Error("disk full");
      },
    });
    expect(() => log.error("x", { value: 1n })).not.toThrow();
  });

  test("the active span's ids win over bound ones; without a span the bound trace id is kept", () => {
    const capture = captureSink();
    const log = createLogger({ sink: capture.sink, clock }).child({
      trace_id: "11111111111111111111111111111111",
    });
    // Without an SDK, a synchronous context manager is enough for the API to report an active span. When another
    // test file in this process already registered the tracing SDK's manager, that one serves as well.
    const registered = context.setGlobalContextManager(new StackContextManager());
    try {
      log.info("no span");
      const spanContext = {
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: "00f067aa0ba902b7",
        traceFlags: 1,
      };
      context.with(trace.setSpanContext(ROOT_CONTEXT, spanContext), () => log.info("in span"));
    } finally {
      if (registered) context.disable();
    }
    expect(capture.records().map((record) => [record.trace_id, record.span_id])).toEqual([
      ["11111111111111111111111111111111", undefined],
      ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"],
    ]);
  });
});

/** The smallest ContextManager: a stack, for code that runs synchronously inside `with`. */
class StackContextManager implements ContextManager {
  private readonly stack: Context[] = [];
  active(): Context {
    return this.stack.at(-1) ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    this.stack.push(ctx);
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.stack.pop();
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.stack.length = 0;
    return this;
  }
}

describe("traceIdFromTraceparent", () => {
  test("reads a valid header and refuses malformed or invalid ones", () => {
    const id = "4bf92f3577b34da6a3ce929d0e0e4736";
    expect(traceIdFromTraceparent(`00-${id}-00f067aa0ba902b7-01`)).toBe(id);
    expect(traceIdFromTraceparent(undefined)).toBeUndefined();
    expect(traceIdFromTraceparent(`ff-${id}-00f067aa0ba902b7-01`)).toBeUndefined();
    expect(traceIdFromTraceparent(`00-${"0".repeat(32)}-00f067aa0ba902b7-01`)).toBeUndefined();
    expect(traceIdFromTraceparent(`00-${id}-${"0".repeat(16)}-01`)).toBeUndefined();
    expect(traceIdFromTraceparent(`00-${id.toUpperCase()}-00f067aa0ba902b7-01`)).toBeUndefined();
  });
});
