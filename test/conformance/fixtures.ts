// Fixture actors for the conformance suite: each message exercises one of the eight semantics.
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { defineActor } from "../../actors/runtime/index.ts";

const empty = v.object({});

export const counter = defineActor({
  type: "counter",
  /** Short, for `Hang`: every other counter turn takes well under a millisecond. */
  turnTimeoutMs: 1_000,
  state: v.object({ count: v.pipe(v.number(), v.integer()), ticks: v.array(v.string()) }),
  initial: () => ({ count: 0, ticks: [] }),
  messages: {
    Increment: v.object({ by: v.pipe(v.number(), v.integer()) }),
    /** Read, await storage, write: loses updates if turns ever interleave. */
    SlowIncrement: empty,
    Get: empty,
    /** Changes everything a turn can change, then throws. */
    FailAfterEffects: empty,
    /** Leaves the state failing its schema. */
    CorruptState: empty,
    /** Throws a public, typed error. */
    Refuse: empty,
    SendTo: v.object({ key: v.string(), count: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
    Announce: v.object({ note: v.string() }),
    ScheduleTick: v.object({ delayMs: v.pipe(v.number(), v.minValue(0)), tag: v.string() }),
    ScheduleAndCancel: v.object({ delayMs: v.number(), tag: v.string() }),
    Tick: v.object({ tag: v.string() }),
    /** Never finishes on its own: it outlives the turn's time limit, then tries to send. */
    Hang: empty,
    PutBox: v.object({ n: v.pipe(v.number(), v.integer()) }),
    GetBox: empty,
    /** Changes the object `kv.get` handed it, then throws: the change must not survive, in memory or on disk. */
    ChangeBoxThenFail: empty,
    /** Sends a payload, then changes the object it sent: what was sent is what it was at `send`. */
    SendThenChange: v.object({ key: v.string() }),
    /** Sends a value JSON cannot hold (a BigInt): this turn fails, alone. */
    SendUnstorable: empty,
    /** Sends a message over the queue's 1 MiB: this turn fails, rather than the relay forever. */
    SendHuge: empty,
    /** Each makes one value of `bytes` characters to store (state, kv, reply): over the limit, this turn fails alone. */
    GrowState: v.object({ bytes: v.number() }),
    PutLarge: v.object({ bytes: v.number() }),
    ReplyLarge: v.object({ bytes: v.number() }),
    /** A timer under one fixed id that renews itself: `left` more times after this one. */
    Renewing: v.object({ left: v.pipe(v.number(), v.integer()), delayMs: v.number() }),
  },
  handlers: {
    Increment(ctx, data) {
      ctx.state.count += data.by;
      return { count: ctx.state.count };
    },
    async SlowIncrement(ctx) {
      const before = ctx.state.count;
      const seen = (await ctx.kv.get<number>("slow-seen")) ?? 0;
      await new Promise((resolve) => setTimeout(resolve, 0));
      ctx.kv.put("slow-seen", seen + 1);
      ctx.state.count = before + 1;
      return { count: ctx.state.count, seen: seen + 1 };
    },
    async Get(ctx) {
      return { ...ctx.state, slowSeen: (await ctx.kv.get<number>("slow-seen")) ?? 0 };
    },
    FailAfterEffects(ctx) {
      ctx.state.count += 1000;
      ctx.kv.put("slow-seen", -1);
      ctx.send({ type: "counter", key: "elsewhere" }, "Increment", { by: 1 });
      ctx.publish("CounterFailed", { key: ctx.key });
      ctx.schedule({ delay: 10 }, "Tick", { tag: "never" });
      throw new Error("handler failed after effects");
    },
    CorruptState(ctx) {
      (ctx.state as { count: unknown }).count = "not a number";
      ctx.send({ type: "counter", key: "elsewhere" }, "Increment", { by: 1 });
    },
    Refuse() {
      throw new EdgewiseError("conflict", "counter refuses");
    },
    SendTo(ctx, data) {
      const ids: string[] = [];
      for (let i = 0; i < data.count; i++) {
        ids.push(ctx.send({ type: "counter", key: data.key }, "Increment", { by: i + 1 }));
      }
      ctx.state.count += 1;
      return { ids };
    },
    Announce(ctx, data) {
      return { id: ctx.publish("CounterAnnounced", { key: ctx.key, note: data.note }, { subject: ctx.key }) };
    },
    ScheduleTick(ctx, data) {
      return { timerId: ctx.schedule({ delay: data.delayMs }, "Tick", { tag: data.tag }) };
    },
    ScheduleAndCancel(ctx, data) {
      const id = ctx.schedule({ delay: data.delayMs }, "Tick", { tag: data.tag });
      ctx.cancelSchedule(id);
      const later = ctx.schedule({ delay: data.delayMs }, "Tick", { tag: `${data.tag}-kept` });
      return { cancelled: id, kept: later };
    },
    Tick(ctx, data) {
      ctx.state.ticks.push(data.tag);
      return { ticks: ctx.state.ticks.length };
    },
    PutBox(ctx, data) {
      ctx.kv.put("box", { n: data.n });
    },
    async GetBox(ctx) {
      return (await ctx.kv.get<{ n: number }>("box")) ?? null;
    },
    async ChangeBoxThenFail(ctx) {
      const box = (await ctx.kv.get<{ n: number }>("box")) ?? { n: 0 };
      box.n += 100;
      throw new Error("failed after changing the box it read");
    },
    SendThenChange(ctx, data) {
      const payload = { by: 1 };
      const id = ctx.send({ type: "counter", key: data.key }, "Increment", payload);
      payload.by = 1000;
      return { id };
    },
    SendUnstorable(ctx) {
      ctx.state.count += 1;
      ctx.send({ type: "counter", key: "elsewhere" }, "Increment", { by: 1n });
    },
    SendHuge(ctx) {
      ctx.state.count += 1;
      ctx.send({ type: "counter", key: "elsewhere" }, "Increment", { by: 1, pad: "x".repeat(1_100_000) });
    },
    GrowState(ctx, data) {
      ctx.state.count += 1;
      ctx.state.ticks.push("x".repeat(data.bytes));
    },
    PutLarge(ctx, data) {
      ctx.state.count += 1;
      ctx.kv.put("large", "x".repeat(data.bytes));
    },
    ReplyLarge(ctx, data) {
      ctx.state.count += 1;
      return { pad: "x".repeat(data.bytes) };
    },
    Renewing(ctx, data) {
      ctx.state.ticks.push(`renewing-${data.left}`);
      if (data.left > 0) {
        const next = { left: data.left - 1, delayMs: data.delayMs };
        ctx.schedule({ delay: data.delayMs }, "Renewing", next, { id: "renewing" });
      }
    },
    async Hang(ctx) {
      ctx.state.count += 1000;
      ctx.kv.put("slow-seen", -1);
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
      // The turn has failed by now: this throws, and nothing of it is committed.
      ctx.send({ type: "counter", key: "elsewhere" }, "Increment", { by: 1 });
    },
  },
});

/** An actor whose `Nap` takes as long as asked before it commits: for timeouts and slow turns. */
export const sleeper = defineActor({
  type: "sleeper",
  state: v.object({ naps: v.number() }),
  initial: () => ({ naps: 0 }),
  messages: { Nap: v.object({ ms: v.number() }) },
  handlers: {
    async Nap(ctx, data) {
      await new Promise((resolve) => setTimeout(resolve, data.ms));
      ctx.state.naps += 1;
      return ctx.state;
    },
  },
});

const ProfileV1 = v.object({ name: v.string() });
const ProfileV2 = v.object({ firstName: v.string(), lastName: v.string(), renamed: v.number() });

/** Version 1 of `profile`: one name field. */
export const profileV1 = defineActor({
  type: "profile",
  state: ProfileV1,
  initial: () => ({ name: "" }),
  messages: { Rename: v.object({ name: v.string() }), Get: empty },
  handlers: {
    Rename(ctx, data) {
      ctx.state.name = data.name;
    },
    Get: (ctx) => ctx.state,
  },
});

/** Version 2 of `profile`: the same actors, split names; stored v1 state migrates on activation. */
export const profileV2 = defineActor({
  type: "profile",
  version: 2,
  state: ProfileV2,
  initial: () => ({ firstName: "", lastName: "", renamed: 0 }),
  migrations: {
    2: (previous) => {
      const [firstName = "", ...rest] = (previous as v.InferOutput<typeof ProfileV1>).name.split(" ");
      return { firstName, lastName: rest.join(" "), renamed: 0 };
    },
  },
  messages: { Rename: v.object({ first: v.string(), last: v.string() }), Get: empty },
  handlers: {
    Rename(ctx, data) {
      ctx.state = { firstName: data.first, lastName: data.last, renamed: ctx.state.renamed + 1 };
    },
    Get: (ctx) => ctx.state,
  },
});

/** The fixture set for a host; `profileVersion` picks which profile definition the host runs. */
export function fixtureActors(profileVersion: 1 | 2 = 1) {
  return [counter, profileVersion === 2 ? profileV2 : profileV1];
}
