// The conformance cases: one list, run against every host through a driver.
import assert from "node:assert/strict";
import type { Envelope } from "../../shared/envelope/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import type { ControlTarget, Outcome } from "./protocol.ts";

export interface ConformanceDriver extends ControlTarget {
  readonly name: string;
  /** Kills the host without a clean shutdown (SIGKILL where it is a process) and starts it on the same data. */
  crash(options?: { profileVersion?: 1 | 2 }): Promise<void>;
  close(): Promise<void>;
}

export interface ConformanceCase {
  name: string;
  /** Which DESIGN.md semantic (1-8) the case checks. */
  semantic: number;
  run(driver: ConformanceDriver, key: string): Promise<void>;
}

function ok(outcome: Outcome): { duplicate: boolean; reply: unknown } {
  if (!outcome.ok) assert.fail(`expected success, got ${outcome.error.code}: ${outcome.error.message}`);
  return outcome;
}

function failed(outcome: Outcome, code: string): void {
  assert.equal(outcome.ok, false, `expected ${code}, got success`);
  if (!outcome.ok) assert.equal(outcome.error.code, code, outcome.error.message);
}

export async function eventually<T>(
  probe: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!accept(last)) {
    if (Date.now() > deadline)
      assert.fail(`condition not met within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await probe();
  }
  return last;
}

const count = async (driver: ConformanceDriver, key: string) =>
  (ok(await driver.ask("counter", key, "Get", {})).reply as { count: number }).count;

const sentTo = (sent: Envelope[], target: string) => sent.filter((envelope) => envelope.target === target);

export const conformanceCases: ConformanceCase[] = [
  {
    name: "identity: unknown actor types and invalid keys get typed errors and touch nothing",
    semantic: 1,
    async run(driver, key) {
      failed(await driver.ask("no-such-type", key, "Get", {}), "actor.unknown_type");
      failed(await driver.ask("counter", "has space", "Increment", { by: 1 }), "actor.invalid_key");
      failed(await driver.ask("counter", "a/b", "Increment", { by: 1 }), "actor.invalid_key");
      failed(await driver.ask("counter", "x".repeat(257), "Increment", { by: 1 }), "actor.invalid_key");
      ok(await driver.ask("counter", `${key}-${"k".repeat(200)}`.slice(0, 256), "Increment", { by: 1 }));
      const snapshot = await driver.inspect("counter", "has-space");
      assert.equal(snapshot.state, undefined);
    },
  },
  {
    name: "serialized turns: 100 concurrent read-modify-write asks that await storage end at exactly 100",
    semantic: 2,
    async run(driver, key) {
      const replies = await Promise.all(
        Array.from({ length: 100 }, () => driver.ask("counter", key, "SlowIncrement", {})),
      );
      const counts = replies
        .map((reply) => (ok(reply).reply as { count: number }).count)
        .sort((a, b) => a - b);
      assert.deepEqual(
        counts,
        Array.from({ length: 100 }, (_, i) => i + 1),
        "each turn saw the previous one",
      );
      const state = ok(await driver.ask("counter", key, "Get", {})).reply as {
        count: number;
        slowSeen: number;
      };
      assert.equal(state.count, 100);
      assert.equal(state.slowSeen, 100);
    },
  },
  {
    name: "atomic commit: a handler that throws leaves no state, outbox, timer, kv or inbox change",
    semantic: 3,
    async run(driver, key) {
      ok(await driver.ask("counter", key, "Increment", { by: 5 }));
      const before = await driver.inspect("counter", key);
      const outcome = await driver.ask("counter", key, "FailAfterEffects", {});
      failed(outcome, "actor.handler_failed");
      if (!outcome.ok) assert.equal(outcome.error.status, 500);
      const after = await driver.inspect("counter", key);
      assert.deepEqual(after, before);
      const state = ok(await driver.ask("counter", key, "Get", {})).reply as {
        count: number;
        slowSeen: number;
      };
      assert.equal(state.count, 5);
      assert.equal(state.slowSeen, 0);
    },
  },
  {
    name: "atomic commit: a failed turn's change to an object kv.get returned is gone, in memory and on disk",
    semantic: 3,
    async run(driver, key) {
      ok(await driver.ask("counter", key, "PutBox", { n: 1 }));
      failed(await driver.ask("counter", key, "ChangeBoxThenFail", {}), "actor.handler_failed");
      assert.deepEqual(ok(await driver.ask("counter", key, "GetBox", {})).reply, { n: 1 });
      // A later write commits the actor's kv cache; the failed turn's change must not ride along.
      ok(await driver.ask("counter", key, "Increment", { by: 1 }));
      await driver.crash();
      assert.deepEqual(ok(await driver.ask("counter", key, "GetBox", {})).reply, { n: 1 });
    },
  },
  {
    name: "atomic commit: a message JSON cannot hold, or over 1 MiB, fails its own turn only; a payload is taken at send",
    semantic: 3,
    async run(driver, key) {
      failed(await driver.ask("counter", key, "SendUnstorable", {}), "request.invalid");
      failed(await driver.ask("counter", key, "SendHuge", {}), "request.too_large");
      assert.equal(await count(driver, key), 0);
      assert.equal((await driver.inspect("counter", key)).outboxSize, 0);
      ok(await driver.ask("counter", key, "SendThenChange", { key: `${key}-sink` }));
      const sent = await eventually(
        async () => sentTo(await driver.sent(), `counter/${key}-sink`),
        (list) => list.length >= 1,
      );
      assert.deepEqual(
        sent.map((envelope) => envelope.data),
        [{ by: 1 }],
      );
    },
  },
  {
    name: "atomic commit: a state, kv value or stored reply over the stored-value limit fails its own turn only",
    semantic: 3,
    async run(driver, key) {
      // Over the limit (1,990,000 bytes), and over what workerd's SQLite stores in one row (about 2.2 MB).
      const over = { bytes: 2_300_000 };
      // Concurrent, so that on a host that group-commits they share batches with the increments.
      const outcomes = await Promise.all([
        driver.ask("counter", key, "Increment", { by: 1 }),
        driver.ask("counter", key, "GrowState", over),
        driver.ask("counter", key, "Increment", { by: 1 }),
        driver.ask("counter", key, "PutLarge", over),
        driver.ask("counter", key, "Increment", { by: 1 }),
        driver.ask("counter", key, "ReplyLarge", over),
        driver.ask("counter", key, "Increment", { by: 1 }),
      ]);
      for (const index of [1, 3, 5]) failed(outcomes[index] as Outcome, "request.too_large");
      for (const index of [0, 2, 4, 6]) ok(outcomes[index] as Outcome);
      const snapshot = await driver.inspect("counter", key);
      assert.deepEqual(snapshot.state, { count: 4, ticks: [] });
      assert.equal(snapshot.inboxSize, 4);
      assert.equal(await count(driver, key), 4);
      // Under the limit, a large value is stored.
      ok(await driver.ask("counter", key, "PutLarge", { bytes: 1_900_000 }));
      assert.equal(await count(driver, key), 5);
    },
  },
  {
    name: "atomic commit: a state that fails its schema after a handler commits nothing",
    semantic: 7,
    async run(driver, key) {
      ok(await driver.ask("counter", key, "Increment", { by: 2 }));
      const before = await driver.inspect("counter", key);
      failed(await driver.ask("counter", key, "CorruptState", {}), "state.invalid");
      assert.deepEqual(await driver.inspect("counter", key), before);
      assert.equal(await count(driver, key), 2);
    },
  },
  {
    name: "bad input: a message that fails its schema, or names an unknown type, commits nothing",
    semantic: 3,
    async run(driver, key) {
      ok(await driver.ask("counter", key, "Increment", { by: 1 }));
      const before = await driver.inspect("counter", key);
      failed(await driver.ask("counter", key, "Increment", { by: "one" }), "message.invalid");
      failed(await driver.ask("counter", key, "Increment", {}), "message.invalid");
      failed(await driver.ask("counter", key, "Explode", {}), "message.unknown_type");
      failed(await driver.ask("counter", key, "toString", {}), "message.unknown_type");
      failed(await driver.receive({ nonsense: true } as unknown as Envelope), "envelope.invalid");
      assert.deepEqual(await driver.inspect("counter", key), before);
    },
  },
  {
    name: "typed errors from a handler reach the caller with their code and commit nothing",
    semantic: 8,
    async run(driver, key) {
      const outcome = await driver.ask("counter", key, "Refuse", {});
      failed(outcome, "conflict");
      if (!outcome.ok) assert.equal(outcome.error.status, 409);
      assert.equal((await driver.inspect("counter", key)).inboxSize, 0);
    },
  },
  {
    name: "turn time limit: a handler still running after turnTimeoutMs fails with actor.turn_timeout, commits nothing, and the mailbox moves on",
    semantic: 3,
    async run(driver, key) {
      const started = Date.now();
      const hung = driver.ask("counter", key, "Hang", {});
      const queued = driver.ask("counter", key, "Increment", { by: 1 });
      const outcome = await hung;
      failed(outcome, "actor.turn_timeout");
      if (!outcome.ok) assert.equal(outcome.error.status, 503);
      assert.ok(Date.now() - started >= 900, "not before the counter's 1 s limit");
      assert.equal((ok(await queued).reply as { count: number }).count, 1);
      const snapshot = await driver.inspect("counter", key);
      assert.equal(snapshot.inboxSize, 1, "only the increment is recorded");
      assert.equal(snapshot.outboxSize, 0);
      assert.deepEqual(snapshot.state, { count: 1, ticks: [] });
      assert.equal(
        ((await driver.ask("counter", key, "Get", {})) as { reply: { slowSeen: number } }).reply.slowSeen,
        0,
      );
    },
  },
  {
    name: "output gate: an ask's reply comes after its turn is committed",
    semantic: 3,
    async run(driver, key) {
      for (let i = 1; i <= 5; i++) {
        const reply = ok(await driver.ask("counter", key, "Increment", { by: 1 })).reply as { count: number };
        assert.equal(reply.count, i);
        const snapshot = await driver.inspect("counter", key);
        assert.equal(snapshot.inboxSize, i, "the inbox record is durable when the reply arrives");
        assert.equal((snapshot.state as { count: number }).count, i);
      }
    },
  },
  {
    name: "exactly once: a message id asked again is acknowledged with the same reply and not applied again",
    semantic: 4,
    async run(driver, key) {
      const first = ok(await driver.ask("counter", key, "Increment", { by: 7 }, `${key}-m1`));
      const again = ok(await driver.ask("counter", key, "Increment", { by: 7 }, `${key}-m1`));
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.deepEqual(again.reply, first.reply);
      const concurrent = await Promise.all(
        [1, 2, 3].map(() => driver.ask("counter", key, "Increment", { by: 1 }, `${key}-m2`)),
      );
      assert.equal(concurrent.filter((outcome) => !ok(outcome).duplicate).length, 1);
      assert.equal(await count(driver, key), 8);
    },
  },
  {
    name: "exactly once: the same delivery three times is applied once",
    semantic: 4,
    async run(driver, key) {
      const envelope = createEnvelope({
        type: "Increment",
        source: "edgewise://test",
        target: `counter/${key}`,
        data: { by: 3 },
      });
      const outcomes = [
        await driver.receive(envelope),
        await driver.receive(envelope),
        await driver.receive(envelope),
      ];
      assert.deepEqual(
        outcomes.map((outcome) => ok(outcome).duplicate),
        [false, true, true],
      );
      assert.equal((await driver.inspect("counter", key)).inboxSize, 1);
      assert.equal(await count(driver, key), 3);
    },
  },
  {
    name: "relay: sent commands reach the transport once committed, in order, with their lineage",
    semantic: 5,
    async run(driver, key) {
      const target = `counter/${key}-target`;
      const reply = ok(
        await driver.ask("counter", key, "SendTo", { key: `${key}-target`, count: 5 }, `${key}-send`),
      );
      const ids = (reply.reply as { ids: string[] }).ids;
      const sent = await eventually(
        async () => sentTo(await driver.sent(), target),
        (list) => list.length >= 5,
      );
      assert.deepEqual(
        sent.map((envelope) => envelope.id),
        ids,
      );
      assert.deepEqual(
        sent.map((envelope) => (envelope.data as { by: number }).by),
        [1, 2, 3, 4, 5],
      );
      for (const envelope of sent) {
        assert.equal(envelope.causationid, `${key}-send`);
        assert.equal(envelope.type, "Increment");
        assert.equal(envelope.source, `edgewise://actor/counter/${key}`);
      }
      await eventually(
        () => driver.inspect("counter", key),
        (snapshot) => snapshot.outboxSize === 0,
      );
    },
  },
  {
    name: "relay: publish emits an event with no target; a failing transport keeps messages and retries in order",
    semantic: 5,
    async run(driver, key) {
      await driver.setTransportFailing(true);
      try {
        for (const note of ["a", "b", "c"]) ok(await driver.ask("counter", key, "Announce", { note }));
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(
          (await driver.inspect("counter", key)).outboxSize,
          3,
          "kept while the transport is down",
        );
      } finally {
        await driver.setTransportFailing(false);
      }
      const mine = await eventually(
        async () =>
          (await driver.sent()).filter(
            (envelope) =>
              envelope.type === "CounterAnnounced" && (envelope.data as { key: string }).key === key,
          ),
        (list) => list.length >= 3,
        15_000,
      );
      assert.deepEqual(
        mine.map((envelope) => (envelope.data as { note: string }).note),
        ["a", "b", "c"],
      );
      for (const envelope of mine) {
        assert.equal(envelope.target, undefined);
        assert.equal(envelope.subject, key);
      }
    },
  },
  {
    name: "timers: a scheduled message fires once, durably; a cancelled one never fires",
    semantic: 6,
    async run(driver, key) {
      // Both timers are counted before either fires: the two asks and the inspect (HTTP to a host process, a
      // Durable Object's alarm on workerd) must fit in the delay, which 150 ms may not on a loaded machine.
      ok(await driver.ask("counter", key, "ScheduleTick", { delayMs: 1_000, tag: "t1" }));
      ok(await driver.ask("counter", key, "ScheduleAndCancel", { delayMs: 1_000, tag: "t2" }));
      assert.equal((await driver.inspect("counter", key)).timers.length, 2);
      const state = await eventually(
        async () => ok(await driver.ask("counter", key, "Get", {})).reply as { ticks: string[] },
        (value) => value.ticks.length >= 2,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const settled = ok(await driver.ask("counter", key, "Get", {})).reply as { ticks: string[] };
      assert.deepEqual([...settled.ticks].sort(), ["t1", "t2-kept"]);
      assert.deepEqual(state.ticks.length, 2);
      assert.equal((await driver.inspect("counter", key)).timers.length, 0);
    },
  },
  {
    name: "timers: a timer that renews itself under one fixed id fires each time",
    semantic: 6,
    async run(driver, key) {
      ok(await driver.ask("counter", key, "Renewing", { left: 3, delayMs: 50 }));
      const state = await eventually(
        async () => ok(await driver.ask("counter", key, "Get", {})).reply as { ticks: string[] },
        (value) => value.ticks.length >= 4,
      );
      assert.deepEqual(state.ticks, ["renewing-3", "renewing-2", "renewing-1", "renewing-0"]);
      assert.equal((await driver.inspect("counter", key)).timers.length, 0);
    },
  },
  {
    name: "timers fire after a restart",
    semantic: 6,
    async run(driver, key) {
      ok(await driver.ask("counter", key, "ScheduleTick", { delayMs: 1_500, tag: "after-crash" }));
      await driver.crash();
      const state = await eventually(
        async () => ok(await driver.ask("counter", key, "Get", {})).reply as { ticks: string[] },
        (value) => value.ticks.length > 0,
        15_000,
      );
      assert.deepEqual(state.ticks, ["after-crash"]);
    },
  },
  {
    name: "outbox entries committed before a crash are relayed after the restart",
    semantic: 5,
    async run(driver, key) {
      const target = `counter/${key}-after`;
      await driver.setTransportFailing(true);
      const reply = ok(await driver.ask("counter", key, "SendTo", { key: `${key}-after`, count: 3 }));
      assert.equal((await driver.inspect("counter", key)).outboxSize, 3);
      await driver.crash();
      const sent = await eventually(
        async () => sentTo(await driver.sent(), target),
        (list) => list.length >= 3,
        15_000,
      );
      assert.deepEqual(
        sent.map((envelope) => envelope.id),
        (reply.reply as { ids: string[] }).ids,
      );
      assert.equal(await count(driver, key), 1, "the sending turn survived the crash");
    },
  },
  {
    name: "state survives a crash, and a duplicate after the restart is still recognized",
    semantic: 4,
    async run(driver, key) {
      ok(await driver.ask("counter", key, "Increment", { by: 4 }, `${key}-before-crash`));
      await driver.crash();
      assert.equal(await count(driver, key), 4);
      assert.equal(
        ok(await driver.ask("counter", key, "Increment", { by: 4 }, `${key}-before-crash`)).duplicate,
        true,
      );
      assert.equal(await count(driver, key), 4);
    },
  },
  {
    name: "migrations: state written by schema version 1 is migrated to version 2 on activation",
    semantic: 7,
    async run(driver, key) {
      ok(await driver.ask("profile", key, "Rename", { name: "Ada King Lovelace" }));
      assert.equal((await driver.inspect("profile", key)).version, 1);
      await driver.crash({ profileVersion: 2 });
      const state = ok(await driver.ask("profile", key, "Get", {})).reply;
      assert.deepEqual(state, { firstName: "Ada", lastName: "King Lovelace", renamed: 0 });
      const snapshot = await driver.inspect("profile", key);
      assert.equal(snapshot.version, 2, "the migrated state was written back");
      ok(await driver.ask("profile", key, "Rename", { first: "Grace", last: "Hopper" }));
      assert.deepEqual(ok(await driver.ask("profile", key, "Get", {})).reply, {
        firstName: "Grace",
        lastName: "Hopper",
        renamed: 1,
      });
      await driver.crash({ profileVersion: 1 });
      // Refused, and retryable (503): the newer code may come back, and a queued message must wait for it.
      const refused = await driver.ask("profile", key, "Get", {});
      failed(refused, "state.newer_than_code");
      assert.equal(!refused.ok && refused.error.status, 503);
    },
  },
];
