// Bulkhead cases: the concurrency cap, the bounded FIFO queue, refusal past it, and aborts while queued.
import type { EdgewiseError } from "../../../shared/errors/index.ts";
import { Bulkhead } from "../../../shared/resilience/index.ts";
import { type Case, codeOf, deferred, equal, rejection } from "../check.ts";

/** A bulkhead and calls that hold their slot until released, in the order they started. */
function fixture(maxConcurrent: number, maxQueue: number) {
  const bulkhead = new Bulkhead({ name: "webhooks", maxConcurrent, maxQueue });
  const started: number[] = [];
  const gates = new Map<number, ReturnType<typeof deferred<void>>>();
  const call = (id: number, signal?: AbortSignal) => {
    const gate = deferred();
    gates.set(id, gate);
    return bulkhead.execute(
      async () => {
        started.push(id);
        await gate.promise;
        return id;
      },
      signal ? { signal } : {},
    );
  };
  const release = (id: number) => gates.get(id)?.resolve();
  return { bulkhead, started, call, release };
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export const bulkheadCases: Case[] = [
  {
    name: "caps concurrency, queues up to maxQueue, and refuses past it at once with bulkhead.full (503)",
    async run() {
      const f = fixture(2, 1);
      const calls = [f.call(1), f.call(2), f.call(3)];
      await tick();
      equal(f.started, [1, 2], "started");
      equal([f.bulkhead.snapshot().active, f.bulkhead.snapshot().queued], [2, 1], "active, queued");
      const refused = (await rejection(f.call(4), "fourth call")) as EdgewiseError;
      equal(
        [codeOf(refused), refused.status, refused.meta],
        ["bulkhead.full", 503, { bulkhead: "webhooks", active: 2, queued: 1 }],
        "refusal",
      );
      f.release(1);
      await tick();
      equal(f.started, [1, 2, 3], "the queued call took the freed slot");
      f.release(2);
      f.release(3);
      equal(await Promise.all(calls), [1, 2, 3], "results");
      equal(
        f.bulkhead.snapshot(),
        { name: "webhooks", active: 0, queued: 0, maxConcurrent: 2, maxQueue: 1, rejected: 1 },
        "idle",
      );
    },
  },
  {
    name: "a queued caller that aborts leaves the queue with its reason and never runs",
    async run() {
      const f = fixture(1, 2);
      const controller = new AbortController();
      const first = f.call(1);
      const second = f.call(2, controller.signal);
      const third = f.call(3);
      await tick();
      controller.abort(new Error("client went away"));
      equal(((await rejection(second, "aborted")) as Error).message, "client went away", "reason");
      equal(f.bulkhead.snapshot().queued, 1, "queued after the abort");
      f.release(1);
      await tick();
      equal(f.started, [1, 3], "the aborted caller never ran; the next one did");
      f.release(3);
      equal(await Promise.all([first, third]), [1, 3], "results");
      equal(f.bulkhead.snapshot().active, 0, "no slot leaked");
    },
  },
  {
    name: "a failing call frees its slot; FIFO order holds",
    async run() {
      const bulkhead = new Bulkhead({ name: "x", maxConcurrent: 1, maxQueue: 3 });
      const order: number[] = [];
      const results = await Promise.allSettled(
        [1, 2, 3, 4].map((id) =>
          bulkhead.execute(async () => {
            order.push(id);
            if (id % 2 === 1) throw new Error(`fail ${id}`);
            return id;
          }),
        ),
      );
      equal(order, [1, 2, 3, 4], "order");
      equal(
        results.map((result) => result.status),
        ["rejected", "fulfilled", "rejected", "fulfilled"],
        "results",
      );
      equal(bulkhead.snapshot().active, 0, "no slot leaked");
    },
  },
];
