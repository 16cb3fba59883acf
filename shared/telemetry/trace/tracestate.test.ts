// A caller's W3C `tracestate` is parsed and bounded before it is carried on: never kept as it came.
import { describe, expect, test } from "bun:test";
import { parseTraceparent } from "./index.ts";

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const carried = (tracestate: string) => parseTraceparent(traceparent, tracestate)?.traceState?.serialize();

describe("tracestate from a caller", () => {
  test("well-formed members are kept, in order", () => {
    expect(carried("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")).toBe(
      "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    );
    expect(carried("tenant@vendor=v1")).toBe("tenant@vendor=v1");
  });

  test("at most 512 characters are carried, whatever the caller sent (an envelope holds no more)", () => {
    // One member too long to be valid (a value is at most 256 characters) among good ones: dropped, the rest kept.
    expect(carried(`a=1,long=${"x".repeat(600)},b=2`)).toBe("a=1,b=2");
    // Many valid members that add up past 512: the first ones that fit are kept, never more than 512 characters.
    const many = Array.from({ length: 30 }, (_, i) => `k${i}=${"v".repeat(40)}`).join(",");
    const kept = carried(many) ?? "";
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThanOrEqual(512);
    expect(many.startsWith(kept)).toBe(true);
    // More than 32 members: 32 at most.
    const short = Array.from({ length: 40 }, (_, i) => `m${i}=1`).join(",");
    expect((carried(short) ?? "").split(",")).toHaveLength(32);
  });

  test("members that are not W3C list members are dropped: bad keys, control characters, '=' in a value", () => {
    expect(carried("UPPER=1,ok=2")).toBe("ok=2");
    expect(carried("ok=2,bad=a\u001b[31mred")).toBe("ok=2");
    expect(carried("ok=2,bad=a=b")).toBe("ok=2");
    expect(carried("no-equals-sign")).toBe("");
  });
});
