// An isolate's QueueLimit under Bun: the real QStash transport against a loopback queue, and a port that records what
// reaches it (the BreakerCoordinator object itself answers in test/commerce/queue-rate-limit-workerd.test.ts).
import { afterEach, expect, test } from "bun:test";
import {
  limitReportingTransport,
  QueueLimit,
  type QueueLimitPort,
} from "../../actors/hosts/cloudflare/queue-limit.ts";
import { QStashTransport } from "../../actors/queue/qstash-transport.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { queueStandIn } from "../support/qstash-limit.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A queue that takes publishes, or answers Upstash's daily-limit 429 with a reset an hour on while `limited`. */
function queue() {
  const standIn = queueStandIn({ limited: false });
  cleanups.push(() => standIn.stop());
  return standIn;
}

/** What the coordinator was told, in order; `down` makes it fail. */
function recordingPort() {
  const reports: Array<number | undefined> = [];
  const state = { down: false };
  const port: QueueLimitPort = {
    report: async (limitedForMs) => {
      if (state.down) throw new Error("coordinator down");
      reports.push(limitedForMs);
    },
    read: async () => undefined,
  };
  return { port, reports, state };
}

function relay(url: string, limit: QueueLimit) {
  const transport = new QStashTransport({
    baseUrl: url,
    token: "t",
    deliveryUrl: () => "http://127.0.0.1:1/_edgewise/deliver/order/o1",
    onRateLimit: (until) => limit.observe(until),
  });
  const reporting = limitReportingTransport(transport, limit);
  let n = 0;
  const send = () =>
    reporting
      .send([createEnvelope({ type: "Ping", source: "test", target: "order/o1", data: { n: n++ } })])
      .then(
        () => "taken",
        (error: unknown) => error,
      );
  return { reporting, send };
}

test("a queue that takes every publish costs the coordinator nothing", async () => {
  const { url } = queue();
  const { port, reports } = recordingPort();
  const { reporting, send } = relay(url, new QueueLimit({ port }));
  for (let i = 0; i < 20; i++) expect(await send()).toBe("taken");
  expect(reports).toHaveLength(0);
  expect(reporting.rateLimitedUntil?.()).toBeUndefined();
});

test("a 429 is reported once with its reset, again only when it changes, and cleared by the publish taken after it", async () => {
  const { url, resetAt, state } = queue();
  const { port, reports } = recordingPort();
  const limit = new QueueLimit({ port });
  const { reporting, send } = relay(url, limit);
  state.limited = true;
  for (let i = 0; i < 5; i++) expect(await send()).not.toBe("taken");
  // One report for five refusals of the same reset: about an hour ahead.
  expect(reports).toHaveLength(1);
  expect(reports[0]).toBeGreaterThan(3_500_000);
  expect(Math.abs((reports[0] as number) + Date.now() - resetAt * 1000)).toBeLessThan(2_000);
  expect(reporting.rateLimitedUntil?.()).toBe(resetAt * 1000);

  state.limited = false;
  expect(await send()).toBe("taken");
  expect(await send()).toBe("taken");
  expect(reports).toStrictEqual([reports[0], undefined]);
  expect(reporting.rateLimitedUntil?.()).toBeUndefined();
});

test("a coordinator that fails costs the relay nothing but the try: the 429 still rejects the send, and is reported later", async () => {
  const { url, state } = queue();
  const recording = recordingPort();
  const lines: string[] = [];
  const limit = new QueueLimit({ port: recording.port, log: (line) => lines.push(line) });
  const { send } = relay(url, limit);
  state.limited = true;
  recording.state.down = true;
  const refused = await send();
  expect(refused).not.toBe("taken");
  expect((refused as Error).message).not.toContain("coordinator down");
  expect(await send()).not.toBe("taken");
  // Said once per outage, not per send.
  expect(lines).toEqual(["queue limit: coordinator unreachable; /readyz shows this isolate's own"]);
  recording.state.down = false;
  expect(await send()).not.toBe("taken");
  expect(recording.reports).toHaveLength(1);
  expect(lines.at(-1)).toBe("queue limit: coordinator reachable again");
});

test("a publish the queue takes waits for no report: not another relay's in flight, nor a resolved promise", async () => {
  const limited = queue();
  const open = queue();
  limited.state.limited = true;
  // A coordinator that takes the 429's report but never answers (overloaded, or its isolate stuck).
  let reporting = false;
  const port: QueueLimitPort = {
    report: () => {
      reporting = true;
      return new Promise<void>(() => {});
    },
    read: async () => undefined,
  };
  const limit = new QueueLimit({ port, timeoutMs: 3_000 });
  const refusedRelay = relay(limited.url, limit);
  const takenRelay = relay(open.url, limit);
  const refused = refusedRelay.send();
  // The taken publish goes once the 429's report is in flight (a fixed pause could end before it on a loaded machine).
  for (const deadline = Date.now() + 5_000; !reporting && Date.now() < deadline; ) await Bun.sleep(5);
  expect(reporting).toBe(true);
  const started = performance.now();
  expect(await takenRelay.send()).toBe("taken");
  // Before, it waited for the other relay's report, until the port's timeout (3 s): half of it leaves a loaded
  // machine's publish over loopback room.
  expect(performance.now() - started).toBeLessThan(1_500);
  expect(await refused).not.toBe("taken");
  // Nothing changed since: no report, and nothing to await.
  expect(await takenRelay.send()).toBe("taken");
  expect(limit.flush()).toBeUndefined();
});

test("a read of the shared limit for /readyz is abandoned well within its budget, and an aborted one says nothing", async () => {
  const lines: string[] = [];
  // A coordinator that never answers a read.
  const port: QueueLimitPort = { report: async () => {}, read: () => new Promise(() => {}) };
  const limit = new QueueLimit({ port, log: (line) => lines.push(line) });
  const started = performance.now();
  expect(await limit.shared()).toBeUndefined();
  // /readyz gives each check 2 s; the read runs beside the queue's request within it. Before, it took the 2 s; now
  // its own 500 ms, and the bound leaves a loaded machine a second over that.
  expect(performance.now() - started).toBeLessThan(1_500);
  expect(lines).toEqual(["queue limit: coordinator unreachable; /readyz shows this isolate's own"]);

  // The check's own deadline passing is not the coordinator's fault.
  const quiet = new QueueLimit({ port, log: (line) => lines.push(`quiet: ${line}`) });
  const controller = new AbortController();
  const read = quiet.shared(controller.signal);
  controller.abort();
  expect(await read).toBeUndefined();
  expect(lines).toHaveLength(1);
});

test("a read answers only a duration ahead as a limit", async () => {
  // What a coordinator of another version, or a corrupted record, could answer over RPC.
  for (const answer of [Number.NaN, -5, 0, Number.POSITIVE_INFINITY, "5", null]) {
    const limit = new QueueLimit({
      port: { report: async () => {}, read: async () => answer as number | undefined },
    });
    expect(await limit.shared()).toBeUndefined();
  }
  const limit = new QueueLimit({ port: { report: async () => {}, read: async () => 60_000 } });
  const until = (await limit.shared()) as number;
  expect(Math.abs(until - Date.now() - 60_000)).toBeLessThan(1_000);
});
