// Bounded security events: at most N per second per kind, the rest counted, and recording never in the way.
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../clock/index.ts";
import { createLogger } from "./logger.ts";
import {
  boundedSecurityEvents,
  type SecurityEvent,
  type SecurityEventStats,
  securityEventKinds,
} from "./security-events.ts";
import { captureSink } from "./sinks.ts";

const none = Object.fromEntries(securityEventKinds.map((kind) => [kind, 0])) as SecurityEventStats["failed"];
const event = (kind: SecurityEvent["kind"], n = 0): SecurityEvent => ({
  kind,
  subject: "ip:203.0.113.9",
  data: { n },
});

describe("boundedSecurityEvents", () => {
  test("records at most perSecond per kind; the next one recorded carries how many were dropped", async () => {
    const clock = new ManualClock();
    const recorded: SecurityEvent[] = [];
    const events = boundedSecurityEvents({ record: (e) => void recorded.push(e), perSecond: 3, clock });
    for (let i = 0; i < 10; i++) events.emit(event("auth_failed", i));
    events.emit(event("rate_limited"));
    await events.settled();
    expect(recorded.map((e) => [e.kind, e.data.n])).toEqual([
      ["auth_failed", 0],
      ["auth_failed", 1],
      ["auth_failed", 2],
      ["rate_limited", 0],
    ]);
    clock.advance(1_000);
    events.emit(event("auth_failed", 10));
    await events.settled();
    expect(recorded.at(-1)?.data).toEqual({ n: 10, droppedBefore: 7 });
    expect(events.stats()).toEqual({
      accepted: { ...none, auth_failed: 4, rate_limited: 1 },
      dropped: { ...none, auth_failed: 7 },
      failed: none,
    });
  });

  test("a failing or throwing store is counted, reported at most every 10 s, and never reaches the caller", async () => {
    const clock = new ManualClock();
    const capture = captureSink();
    let calls = 0;
    const events = boundedSecurityEvents({
      record: (e) => {
        calls += 1;
        if (e.data.n === 0) throw new Error("sync failure");
        return Promise.reject(new Error("postgres is down"));
      },
      logger: createLogger({ sink: capture.sink, clock }),
      clock,
    });
    expect(() => events.emit(event("signature_failed", 0))).not.toThrow();
    events.emit(event("signature_failed", 1));
    await events.settled();
    expect(calls).toBe(2);
    expect(events.stats().failed.signature_failed).toBe(2);
    const warnings = capture.records().filter((record) => record.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ msg: "security event not recorded", kind: "signature_failed" });
    expect(capture.records().filter((record) => record.msg === "security.signature_failed")).toHaveLength(2);
  });

  test("a wall clock stepped back an hour does not silence the next report of a failing store", async () => {
    const clock = new ManualClock();
    const capture = captureSink();
    const events = boundedSecurityEvents({
      record: () => Promise.reject(new Error("postgres is down")),
      logger: createLogger({ sink: capture.sink, clock }),
      clock,
    });
    events.emit(event("auth_failed", 0));
    await events.settled();
    clock.step(-3_600_000);
    clock.advance(10_000);
    events.emit(event("auth_failed", 1));
    await events.settled();
    expect(capture.records().filter((record) => record.msg === "security event not recorded")).toHaveLength(
      2,
    );
  });

  test("recording is off the caller's path: emit returns before the store is even called", async () => {
    let started = false;
    let finish: () => void = () => {};
    const events = boundedSecurityEvents({
      record: () => {
        started = true;
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
      maxInFlight: 1,
    });
    events.emit(event("auth_failed", 0));
    expect(started).toBe(false);
    await Promise.resolve();
    expect(started).toBe(true);
    // One still running: a second is dropped rather than queued behind a slow store.
    events.emit(event("auth_failed", 1));
    expect(events.stats().dropped.auth_failed).toBe(1);
    finish();
    await events.settled();
  });
});
