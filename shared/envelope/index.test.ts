// The CloudEvents envelope: built valid, extensions kept, invalid ones refused with field paths.
import { describe, expect, test } from "bun:test";
import { EdgewiseError } from "../errors/index.ts";
import { createEnvelope, parseEnvelope } from "./index.ts";

describe("CloudEvents envelope", () => {
  test("createEnvelope builds a valid CloudEvent 1.0 with a fresh id and its own correlation id", () => {
    const envelope = createEnvelope({
      type: "OrderPlaced",
      source: "edgewise://actor/order/o1",
      data: { n: 1 },
    });
    expect(parseEnvelope(envelope)).toEqual(envelope);
    expect(envelope.specversion).toBe("1.0");
    expect(envelope.datacontenttype).toBe("application/json");
    expect(envelope.id).toHaveLength(21);
    expect(envelope.correlationid).toBe(envelope.id);
    expect(createEnvelope({ type: "x", source: "s", data: null }).id).not.toBe(envelope.id);
  });

  test("extensions are kept and checked", () => {
    const envelope = createEnvelope({
      type: "StockReserved",
      source: "s",
      data: {},
      target: "order/o-1",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      causationid: "m1",
      correlationid: "c1",
    });
    expect(parseEnvelope(JSON.parse(JSON.stringify(envelope)))).toMatchObject({
      target: "order/o-1",
      causationid: "m1",
      correlationid: "c1",
    });
  });

  test("invalid envelopes are rejected with field paths", () => {
    const good = createEnvelope({ type: "t", source: "s", data: {} });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, specversion: "0.3" }, "specversion"],
      [{ ...good, id: "" }, "id"],
      [{ ...good, time: "yesterday" }, "time"],
      [{ ...good, target: "Order/ o1" }, "target"],
      [{ ...good, traceparent: "00-xyz" }, "traceparent"],
    ];
    for (const [input, path] of cases) {
      try {
        parseEnvelope(input);
        throw new Error("accepted");
      } catch (error) {
        expect(error).toBeInstanceOf(EdgewiseError);
        expect((error as EdgewiseError).code).toBe("envelope.invalid");
        expect((error as EdgewiseError).issues?.[0]?.path).toBe(path);
      }
    }
  });
});
