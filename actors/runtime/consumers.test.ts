// fanInConsumer: one delivery for several consumers; a malformed event is refused before any part applies it.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { fanInConsumer, type MessageConsumer } from "./consumers.ts";

function recorder(type: string, check?: (envelope: Envelope) => void) {
  const seen: Envelope[] = [];
  const consumer: MessageConsumer = {
    type,
    async receive(envelope) {
      check?.(envelope);
      seen.push(envelope);
      return { duplicate: false, reply: null };
    },
  };
  return { consumer, seen };
}

const event = (data: unknown) =>
  createEnvelope({ type: "Shipped", source: "edgewise://test", target: "readside/events", data });

describe("fanInConsumer", () => {
  test("hands the event to every part that takes it, each addressed to itself", async () => {
    const log = recorder("log");
    const model = recorder("model");
    const fanIn = fanInConsumer("readside", [
      { consumer: log.consumer, key: "all", events: ["Shipped"] },
      { consumer: model.consumer, key: "orders", events: ["Shipped"] },
    ]);
    expect(await fanIn.receive(event({ orderId: "o1" }))).toEqual({
      duplicate: false,
      reply: { log: null, model: null },
    });
    expect(log.seen.map((e) => e.target)).toEqual(["log/all"]);
    expect(model.seen.map((e) => e.target)).toEqual(["model/orders"]);
    await expect(fanIn.receive({ ...event({}), type: "Unknown" })).rejects.toMatchObject({
      code: "message.unknown_type",
    });
  });

  test("with a key, a delivery addressed to any other key of its type is refused and no part runs", async () => {
    const log = recorder("log");
    const fanIn = fanInConsumer("readside", [{ consumer: log.consumer, key: "all", events: ["Shipped"] }], {
      key: "events",
    });
    for (const target of ["readside/other", "readside/events2", "readside/"]) {
      await expect(fanIn.receive({ ...event({}), target })).rejects.toMatchObject({
        code: "actor.invalid_key",
      });
    }
    expect(log.seen).toEqual([]);
    expect(await fanIn.receive(event({}))).toEqual({ duplicate: false, reply: { log: null } });
    expect(log.seen.map((e) => e.target)).toEqual(["log/all"]);
  });

  test("with schemas, malformed data is message.invalid and no part runs (found by the fuzzer: the log kept half)", async () => {
    const log = recorder("log");
    // A part that validates for itself, as the projector does: without the up-front check the log part would
    // have recorded the event while this one refused it, and the delivery would be dead-lettered half applied.
    const model = recorder("model", (envelope) => {
      if (!v.is(v.object({ orderId: v.string() }), envelope.data)) throw new Error("the model refuses it");
    });
    const fanIn = fanInConsumer(
      "readside",
      [
        { consumer: log.consumer, key: "all", events: ["Shipped"] },
        { consumer: model.consumer, key: "orders", events: ["Shipped"] },
      ],
      { schemas: { Shipped: v.object({ orderId: v.string() }) } },
    );
    for (const data of ["00", null, { orderId: 1 }, []]) {
      await expect(fanIn.receive(event(data))).rejects.toMatchObject({ code: "message.invalid" });
    }
    expect(log.seen).toEqual([]);
    expect(model.seen).toEqual([]);
    await fanIn.receive(event({ orderId: "o1" }));
    expect([log.seen.length, model.seen.length]).toEqual([1, 1]);
  });
});
