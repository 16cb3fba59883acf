// The local host: clock-driven timers, failed group commits, retention, eviction, recovery, aborts, reads.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as v from "valibot";
import { ManualClock } from "../../../shared/clock/index.ts";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { counter } from "../../../test/conformance/fixtures.ts";
import { RecordingTransport } from "../../../test/support/memory-transport.ts";
import { defineActor } from "../../runtime/index.ts";
import { LocalActorHost } from "./host.ts";
import type { SqlDatabase } from "./sql.ts";
import { openBunSqlite } from "./sqlite-bun.ts";
import { LocalStore } from "./store.ts";

const hosts: LocalActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.stop()));
});

function dbFile(): string {
  return join(mkdtempSync(join(tmpdir(), "edgewise-host-")), "actors.db");
}

function boot(options: Partial<ConstructorParameters<typeof LocalActorHost>[0]> & { file?: string } = {}) {
  const host = new LocalActorHost({
    actors: [counter],
    db: options.db ?? openBunSqlite(options.file ?? dbFile()),
    onBackgroundError: () => {},
    ...options,
  });
  hosts.push(host);
  return host;
}

const count = async (host: LocalActorHost, key: string) =>
  ((await host.ask({ type: "counter", key }, "Get", {})).reply as { count: number }).count;

describe("local host", () => {
  test("timers fire on the host's clock: not before their time, once after it", async () => {
    const clock = new ManualClock();
    const host = boot({ clock });
    await host.ask({ type: "counter", key: "k" }, "ScheduleTick", { delayMs: 60_000, tag: "minute" });
    await host.tick();
    expect(host.inspect({ type: "counter", key: "k" }).timers).toHaveLength(1);
    clock.advance(59_999);
    await host.tick();
    expect(host.inspect({ type: "counter", key: "k" }).state).toMatchObject({ ticks: [] });
    clock.advance(1);
    await host.tick();
    await host.tick();
    expect(host.inspect({ type: "counter", key: "k" })).toMatchObject({
      state: { ticks: ["minute"] },
      timers: [],
    });
  });

  test("a failed group commit resets the actor: no reply escapes, and state reloads from disk", async () => {
    const real = openBunSqlite(dbFile());
    let failNext = false;
    const flaky: SqlDatabase = {
      ...real,
      transaction: (fn) => {
        if (failNext) {
          failNext = false;
          throw new Error("disk full (test)");
        }
        return real.transaction(fn);
      },
    };
    const host = boot({ db: flaky });
    await host.ask({ type: "counter", key: "k" }, "Increment", { by: 1 });
    failNext = true;
    const lost = await host
      .ask({ type: "counter", key: "k" }, "Increment", { by: 10 })
      .catch((error) => error);
    expect(lost).toBeInstanceOf(EdgewiseError);
    expect((lost as EdgewiseError).code).toBe("actor.reset");
    expect(await count(host, "k")).toBe(1);
    // Only the first increment is recorded: the lost one never committed, and a read records nothing.
    expect(host.inspect({ type: "counter", key: "k" }).inboxSize).toBe(1);
  });

  test("handled ids are forgotten after the retention window, and not before", async () => {
    const clock = new ManualClock();
    const host = boot({ clock, inboxRetentionMs: 3_600_000 });
    await host.ask({ type: "counter", key: "k" }, "Increment", { by: 1 }, { id: "m-1" });
    clock.advance(3_599_999);
    expect(host.store.pruneInbox(clock.now() - 3_600_000)).toBe(0);
    const again = await host.ask({ type: "counter", key: "k" }, "Increment", { by: 1 }, { id: "m-1" });
    expect(again.duplicate).toBe(true);
    clock.advance(2);
    expect(host.store.pruneInbox(clock.now() - 3_600_000)).toBeGreaterThanOrEqual(1);
  });

  test("a backlog of handled ids past the retention is pruned in batches: all go, and the WAL stays small", async () => {
    // A node started after a day down (or with a shorter retention) finds millions. One DELETE for all of them blocked
    // the event loop while it ran and grew the WAL to the size of every page it touched, for good: here 42 MB.
    const file = dbFile();
    const seed = openBunSqlite(file);
    new LocalStore(seed).flush();
    const insert = seed.prepare("INSERT INTO inbox (actor, id, reply, at) VALUES (?, ?, NULL, ?)");
    const now = Date.now();
    seed.transaction(() => {
      for (let i = 0; i < 300_000; i++)
        insert.run(`counter/k${i % 5_000}`, `msg_${i}_padded_to_a_realistic_id`, i);
      insert.run("counter/kept", "msg_recent", now);
    });
    seed.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    seed.close();
    const host = boot({ file, inboxRetentionMs: 3_600_000 }).start();
    const reader = openBunSqlite(file);
    try {
      const left = () => Number(reader.prepare("SELECT count(*) AS n FROM inbox").get()?.n);
      for (let i = 0; i < 600 && left() > 1; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(left()).toBe(1);
      expect(host.inspect({ type: "counter", key: "kept" }).inboxSize).toBe(1);
      // SQLite checkpoints between the batches' commits and writes the WAL from its start again: about 8 MB here (its
      // 4 MB autocheckpoint and a batch), against 39 MB for one DELETE of them all.
      expect(statSync(`${file}-wal`).size).toBeLessThan(16 * 1024 * 1024);
    } finally {
      reader.close();
      // Stopped here, not after the test: its 40 MB file is removed with its directory.
      await host.stop();
      hosts.splice(hosts.indexOf(host), 1);
      rmSync(dirname(file), { recursive: true, force: true });
    }
  }, 60_000);

  test("idle actors are evicted from memory and reactivate from disk", async () => {
    const clock = new ManualClock();
    const host = boot({ clock, idleEvictMs: 1_000 }).start();
    await host.ask({ type: "counter", key: "k" }, "Increment", { by: 3 });
    expect(host.stats().activeActors).toBe(1);
    clock.advance(1_001);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(host.stats().activeActors).toBe(0);
    expect(await count(host, "k")).toBe(3);
  });

  test("actors in memory are bounded by count: a flood of keys evicts the least recently asked idle ones", async () => {
    const host = boot({ maxActiveActors: 3 }).start();
    const loads: string[] = [];
    const loadState = host.store.loadState.bind(host.store);
    host.store.loadState = (actor) => {
      loads.push(actor);
      return loadState(actor);
    };
    await host.ask({ type: "counter", key: "hot" }, "Increment", { by: 1 });
    for (let i = 0; i < 50; i++) {
      await count(host, `scan-${i}`);
      expect(await count(host, "hot")).toBe(1);
      expect(host.stats().activeActors).toBeLessThanOrEqual(3);
    }
    // The actor asked between the others stayed in memory: activated once, never reloaded.
    expect(loads.filter((actor) => actor === "counter/hot")).toHaveLength(1);
    // An evicted one reactivates from disk with its state.
    await host.ask({ type: "counter", key: "scan-0" }, "Increment", { by: 5 });
    for (let i = 1; i < 5; i++) await count(host, `scan-${i}`);
    expect(await count(host, "scan-0")).toBe(5);
  });

  test("a busy actor is never evicted for room: the host goes over its bound until the turn ends", async () => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const waiter = defineActor({
      type: "waiter",
      state: v.object({ n: v.number() }),
      initial: () => ({ n: 0 }),
      messages: { Wait: v.object({}), Get: v.object({}) },
      handlers: {
        async Wait(ctx) {
          await gate;
          ctx.state.n += 1;
          return ctx.state;
        },
        Get: (ctx) => ctx.state,
      },
    });
    const host = boot({ actors: [waiter], maxActiveActors: 1 }).start();
    const busy = host.ask({ type: "waiter", key: "busy" }, "Wait", {});
    await host.ask({ type: "waiter", key: "other" }, "Get", {});
    expect(host.stats().activeActors).toBe(2);
    release();
    expect((await busy).reply).toEqual({ n: 1 });
    await host.ask({ type: "waiter", key: "third" }, "Get", {});
    expect(host.stats().activeActors).toBe(1);
    expect((await host.ask({ type: "waiter", key: "busy" }, "Get", {})).reply).toEqual({ n: 1 });
  });

  test("a wall clock stepped back an hour does not hold a failed send's retry for the hour", async () => {
    const clock = new ManualClock();
    const transport = Object.assign(new RecordingTransport(), { failing: true });
    const host = boot({ clock, transport });
    await host.ask({ type: "counter", key: "k" }, "SendTo", { key: "other", count: 2 });
    await host.tick(); // the send fails: a backoff of at most 250 ms, stored as wall time
    expect(transport.attempts).toBe(1);
    transport.failing = false;
    clock.step(-3_600_000);
    clock.advance(1_000);
    await host.tick();
    expect(transport.sent.map((envelope) => envelope.target)).toEqual(["counter/other", "counter/other"]);
    // Another actor's entries, and a backoff still within reach, keep their order and wait as before.
    transport.failing = true;
    await host.ask({ type: "counter", key: "k2" }, "SendTo", { key: "other", count: 1 });
    await host.tick();
    transport.failing = false;
    await host.tick();
    expect(transport.sent).toHaveLength(2);
    clock.advance(250);
    await host.tick();
    expect(transport.sent).toHaveLength(3);
  });

  test("a restart recovers state, pending outbox entries and timers", async () => {
    const file = dbFile();
    const first = boot({ file, transport: Object.assign(new RecordingTransport(), { failing: true }) });
    await first.ask({ type: "counter", key: "k" }, "SendTo", { key: "other", count: 2 });
    await first.ask({ type: "counter", key: "k" }, "ScheduleTick", { delayMs: 50, tag: "later" });
    await first.stop();
    hosts.splice(hosts.indexOf(first), 1);
    const transport = new RecordingTransport();
    const second = boot({ file, transport, pollMs: 20 }).start();
    await transport.waitFor(2);
    expect(transport.sent.map((envelope) => envelope.target)).toEqual(["counter/other", "counter/other"]);
    for (
      let i = 0;
      i < 50 &&
      (second.inspect({ type: "counter", key: "k" }).state as { ticks: string[] }).ticks.length === 0;
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(second.inspect({ type: "counter", key: "k" }).state).toMatchObject({ count: 1, ticks: ["later"] });
  });

  test("a failed firing's retry moves only that firing, never a timer that replaced it under the same id", async () => {
    const host = boot();
    const envelope = (id: string) =>
      createEnvelope({ id, type: "Tick", source: "edgewise://test", target: "counter/r", data: { tag: id } });
    await host.store.storageFor("counter/r").commit({
      state: { count: 0, ticks: [] },
      version: 1,
      outbox: [],
      timersAdded: [{ id: "renewing", at: 5_000, envelope: envelope("second-scheduling") }],
      timersRemoved: [],
      kv: [],
    });
    host.store.retryTimer("counter/r", "renewing", "first-scheduling", 100, 1);
    expect(host.inspect({ type: "counter", key: "r" }).timers).toEqual([
      { id: "renewing", at: 5_000, type: "Tick" },
    ]);
    host.store.retryTimer("counter/r", "renewing", "second-scheduling", 100, 1);
    expect(host.inspect({ type: "counter", key: "r" }).timers).toEqual([
      { id: "renewing", at: 100, type: "Tick" },
    ]);
  });

  test("a stale firing (its timer replaced while it waited in the mailbox) is skipped and keeps the new timer", async () => {
    const clock = new ManualClock();
    const host = boot({ clock });
    const k = { type: "counter", key: "renew" };
    await host.ask(k, "Renewing", { left: 1, delayMs: 1_000 });
    clock.advance(1_000);
    // The replacing turn is queued first; the tick then reads the old firing from disk and queues it behind.
    const replacing = host.ask(k, "Renewing", { left: 5, delayMs: 1_000 });
    await Promise.all([replacing, host.tick()]);
    const after = host.inspect(k);
    // The old firing (`renewing-0`) never ran, and it removed nothing: the replacing turn's timer is still there.
    expect(after.state).toMatchObject({ ticks: ["renewing-1", "renewing-5"] });
    expect(after.timers).toEqual([{ id: "renewing", at: clock.now() + 1_000, type: "Renewing" }]);
    clock.advance(1_000);
    await host.tick();
    expect(host.inspect(k).state).toMatchObject({ ticks: ["renewing-1", "renewing-5", "renewing-4"] });
  });

  test("a slow timer firing holds only itself: timers due after it still fire on time", async () => {
    const napper = defineActor({
      type: "napper",
      state: v.object({ woke: v.array(v.string()) }),
      initial: () => ({ woke: [] }),
      messages: {
        Plan: v.object({ delayMs: v.number(), napMs: v.number() }),
        Nap: v.object({ napMs: v.number() }),
      },
      handlers: {
        Plan(ctx, data) {
          ctx.schedule({ delay: data.delayMs }, "Nap", { napMs: data.napMs });
        },
        async Nap(ctx, data) {
          await new Promise((resolve) => setTimeout(resolve, data.napMs));
          ctx.state.woke.push(String(Date.now()));
        },
      },
    });
    const host = boot({ actors: [napper], pollMs: 5_000 }).start();
    const woken = (key: string) =>
      (host.inspect({ type: "napper", key }).state as { woke: string[] }).woke.length > 0;
    await host.ask({ type: "napper", key: "slow" }, "Plan", { delayMs: 0, napMs: 3_000 });
    await host.ask({ type: "napper", key: "quick" }, "Plan", { delayMs: 100, napMs: 0 });
    const started = Date.now();
    while (!woken("quick") && Date.now() - started < 2_500)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(woken("quick")).toBe(true);
    expect(woken("slow")).toBe(false);
  });

  test("a data dir written by a newer store schema is refused", () => {
    const file = dbFile();
    const db = openBunSqlite(file);
    boot({ db });
    db.exec("UPDATE edgewise_meta SET value = '99' WHERE name = 'schema'");
    expect(() => boot({ file })).toThrow("newer Edgewise");
  });
});

describe("abortable asks", () => {
  test("a queued ask whose signal aborts never runs; the running one still commits", async () => {
    const host = boot();
    const first = host.ask({ type: "counter", key: "slow" }, "SlowIncrement", {});
    const controller = new AbortController();
    const second = host.ask(
      { type: "counter", key: "slow" },
      "Increment",
      { by: 100 },
      { signal: controller.signal },
    );
    controller.abort(new DOMException("time is up", "TimeoutError"));
    const error = await second.catch((caught) => caught);
    expect(error).toBeInstanceOf(EdgewiseError);
    expect((error as EdgewiseError).code).toBe("timeout");
    expect((await first).reply).toMatchObject({ count: 1 });
    expect(await count(host, "slow")).toBe(1);
  });

  test("asks sharing one signal (a gateway deadline slot): the answered keep their replies, every queued one is dropped", async () => {
    const host = boot();
    const controller = new AbortController();
    const { signal } = controller;
    const answered = await host.ask({ type: "counter", key: "a" }, "Increment", { by: 1 }, { signal });
    const running = host.ask({ type: "counter", key: "b" }, "SlowIncrement", {}, { signal });
    const queued = [1, 2, 3].map((by) =>
      host.ask({ type: "counter", key: "b" }, "Increment", { by }, { signal }).catch((caught) => caught),
    );
    const elsewhere = host.ask({ type: "counter", key: "c" }, "Increment", { by: 5 }, { signal });
    expect((await elsewhere).reply).toMatchObject({ count: 5 });
    controller.abort(new DOMException("time is up", "TimeoutError"));
    for (const error of await Promise.all(queued)) expect((error as EdgewiseError).code).toBe("timeout");
    // The running turn's caller stops waiting too, but the turn commits; nothing queued behind it ever ran.
    expect(((await running.catch((caught) => caught)) as EdgewiseError).code).toBe("timeout");
    expect(await count(host, "b")).toBe(1);
    expect(answered.reply).toMatchObject({ count: 1 });
    expect(await count(host, "a")).toBe(1);
    expect(await count(host, "c")).toBe(5);
  });

  test("queued asks timing out in any order: the rest run in the order they were asked, the timed-out never run", async () => {
    const host = boot();
    const address = { type: "counter", key: "order" };
    const running = host.ask(address, "SlowIncrement", {});
    const controllers = Array.from({ length: 300 }, () => new AbortController());
    const asks = controllers.map((controller, i) =>
      host.ask(address, "Tick", { tag: `t${i}` }, { signal: controller.signal }).catch((caught) => caught),
    );
    // Every third and every seventh, from the back, the middle and the front: they leave the mailbox out of order.
    const timedOut = controllers.map((_, i) => i).filter((i) => i % 3 === 1 || i % 7 === 0);
    for (const i of [...timedOut].sort((a, b) => ((a * 37) % 300) - ((b * 37) % 300)))
      controllers[i]?.abort(new DOMException("time is up", "TimeoutError"));
    expect(host.stats().mailboxDepth).toBe(300 - timedOut.length);
    await running;
    const outcomes = await Promise.all(asks);
    for (const i of timedOut) expect((outcomes[i] as EdgewiseError).code).toBe("timeout");
    const kept = controllers.map((_, i) => i).filter((i) => !timedOut.includes(i));
    expect(host.inspect(address).state).toMatchObject({ count: 1, ticks: kept.map((i) => `t${i}`) });
    expect(host.stats().mailboxDepth).toBe(0);
  });

  test("an already-aborted signal is refused before anything is queued", async () => {
    const host = boot();
    const error = await host
      .ask({ type: "counter", key: "x" }, "Increment", { by: 1 }, { signal: AbortSignal.abort() })
      .catch((caught) => caught);
    expect((error as EdgewiseError).code).toBe("timeout");
    expect(host.inspect({ type: "counter", key: "x" }).state).toBeUndefined();
  });
});

describe("turn time limit", () => {
  const napper = defineActor({
    type: "napper",
    state: v.object({ naps: v.number() }),
    initial: () => ({ naps: 0 }),
    messages: { Nap: v.object({ ms: v.number() }), HangThenSend: v.object({}) },
    handlers: {
      async Nap(ctx, data) {
        await new Promise((resolve) => setTimeout(resolve, data.ms));
        ctx.state.naps += 1;
        return ctx.state;
      },
      async HangThenSend(ctx) {
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
        try {
          ctx.send({ type: "napper", key: "other" }, "Nap", { ms: 0 });
          lateSend = "sent";
        } catch (error) {
          lateSend = (error as EdgewiseError).code;
        }
      },
    },
  });
  let lateSend = "";

  test("the host's limit applies to actors that set none; a turn under it commits, one over it fails and frees the mailbox", async () => {
    const transport = new RecordingTransport();
    // 1 s, so that the turns meant to commit (a 20 ms nap, an immediate one) do so on a loaded machine too: with
    // 200 ms, a stall of that much made one of them time out.
    const host = boot({ actors: [napper], turnTimeoutMs: 1_000, transport }).start();
    expect((await host.ask({ type: "napper", key: "n" }, "Nap", { ms: 20 })).reply).toEqual({ naps: 1 });
    const slow = host.ask({ type: "napper", key: "n" }, "Nap", { ms: 2_500 }).catch((caught) => caught);
    const next = host.ask({ type: "napper", key: "n" }, "Nap", { ms: 0 });
    const error = (await slow) as EdgewiseError;
    expect(error.code).toBe("actor.turn_timeout");
    expect(error.status).toBe(503);
    expect(error.message).toContain("napper/n did not finish handling Nap within 1000 ms");
    // The queued turn ran as soon as the slow one was given up, on the state before it.
    expect((await next).reply).toEqual({ naps: 2 });
    const hung = host.ask({ type: "napper", key: "h" }, "HangThenSend", {}).catch((caught) => caught);
    expect(((await hung) as EdgewiseError).code).toBe("actor.turn_timeout");
    // The handler saw its signal abort; its late send was refused, and nothing of it reached the outbox.
    await Bun.sleep(10);
    expect(lateSend).toBe("actor.turn_timeout");
    // The slow Nap finishes in the background (2.5 s after it began; two 1 s timeouts have passed since): its state
    // change is discarded.
    await Bun.sleep(700);
    expect(host.inspect({ type: "napper", key: "n" })).toMatchObject({ state: { naps: 2 }, inboxSize: 2 });
    expect(host.inspect({ type: "napper", key: "h" })).toMatchObject({ inboxSize: 0, outboxSize: 0 });
    expect(transport.sent).toHaveLength(0);
  });

  test("stop lets the running and queued turns commit, refuses new messages with 503, then closes", async () => {
    const file = dbFile();
    const host = boot({ actors: [napper], file }).start();
    const running = host.ask({ type: "napper", key: "s" }, "Nap", { ms: 150 });
    const queued = host.ask({ type: "napper", key: "s" }, "Nap", { ms: 0 });
    await Bun.sleep(20);
    const stopping = host.stop();
    const late = await host.ask({ type: "napper", key: "s" }, "Nap", { ms: 0 }).catch((caught) => caught);
    expect((late as EdgewiseError).code).toBe("unavailable");
    expect((await running).reply).toEqual({ naps: 1 });
    expect((await queued).reply).toEqual({ naps: 2 });
    await stopping;
    const again = boot({ actors: [napper], file }).start();
    expect(again.inspect({ type: "napper", key: "s" })).toMatchObject({ state: { naps: 2 }, inboxSize: 2 });
  });

  test("a turn that returns without awaiting costs no timer; invalid limits are refused at definition", async () => {
    const realSetTimeout = globalThis.setTimeout;
    let timers = 0;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      timers++;
      return realSetTimeout(fn, ms);
    }) as typeof setTimeout;
    try {
      const host = boot();
      await host.ask({ type: "counter", key: "sync" }, "Increment", { by: 1 });
      const before = timers;
      await host.ask({ type: "counter", key: "sync" }, "Increment", { by: 1 });
      expect(timers).toBe(before);
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    for (const turnTimeoutMs of [0, -1, 1.5]) {
      expect(() => defineActor({ ...napper, turnTimeoutMs })).toThrow("turnTimeoutMs must be a whole number");
    }
  });
});

describe("read-only turns", () => {
  test("a read with a host-minted id commits nothing, yet never replies before the writes it read", async () => {
    const real = openBunSqlite(dbFile());
    let writes = 0;
    const counting: SqlDatabase = {
      ...real,
      transaction: (fn) => {
        writes++;
        return real.transaction(fn);
      },
    };
    const host = boot({ db: counting });
    const write = host.ask({ type: "counter", key: "r" }, "Increment", { by: 2 });
    const read = host.ask({ type: "counter", key: "r" }, "Get", {});
    let writeDone = false;
    void write.then(() => {
      writeDone = true;
    });
    const seen = (await read).reply as { count: number };
    expect(writeDone).toBe(true);
    expect(seen.count).toBe(2);
    const before = writes;
    await host.ask({ type: "counter", key: "r" }, "Get", {});
    expect(writes).toBe(before);
    expect(host.inspect({ type: "counter", key: "r" }).inboxSize).toBe(1);
    // The same read with a caller-chosen id is recorded: a retry with that id must find its reply.
    await host.ask({ type: "counter", key: "r" }, "Get", {}, { id: "read-1" });
    expect(host.inspect({ type: "counter", key: "r" }).inboxSize).toBe(2);
  });
});
