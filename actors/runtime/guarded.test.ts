// Ports behind a dependency's breaker: the transport, a consumer and a remote host fail fast once it opens.
import { describe, expect, test } from "bun:test";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { ManualClock } from "../../shared/clock/index.ts";
import { Dependencies, isBreakerOpen } from "../../shared/resilience/index.ts";
import { guardedConsumer, guardedHost, guardedTransport } from "./guarded.ts";

const envelope = () => createEnvelope({ type: "Ping", source: "test", data: {}, target: "billing/c1" });

function failing() {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    run: async (): Promise<never> => {
      calls++;
      throw new EdgewiseError("unavailable", "database down");
    },
  };
}

describe("guarded ports", () => {
  test("the transport's breaker opens after 5 failures in a row; then send fails fast without calling", async () => {
    const clock = new ManualClock(0);
    const dependencies = new Dependencies({ clock });
    const broker = failing();
    const transport = guardedTransport({ send: broker.run }, dependencies, "broker");
    for (let i = 0; i < 5; i++) await expect(transport.send([envelope()])).rejects.toThrow("database down");
    expect(dependencies.state("broker")).toBe("open");
    const error = await transport.send([envelope()]).catch((e: unknown) => e);
    expect(isBreakerOpen(error)).toBe(true);
    expect((error as EdgewiseError).status).toBe(503);
    expect(broker.calls).toBe(5);
    // After the reset time one probe goes through; its success closes the breaker.
    clock.advance(5_000);
    const healthy = guardedTransport({ send: async () => {} }, dependencies, "broker");
    await healthy.send([envelope()]);
    expect(dependencies.state("broker")).toBe("closed");
  });

  test("a consumer behind the postgres breaker answers 503 at once while it is open, and 4xx answers do not trip it", async () => {
    const dependencies = new Dependencies({ clock: new ManualClock(0) });
    const notFound = guardedConsumer(
      {
        type: "billing",
        receive: async () => {
          throw new EdgewiseError("not_found", "no such account");
        },
      },
      dependencies,
      "postgres",
    );
    for (let i = 0; i < 10; i++)
      await expect(notFound.receive(envelope())).rejects.toThrow("no such account");
    expect(dependencies.state("postgres")).toBe("closed");

    const db = failing();
    const billing = guardedConsumer({ type: "billing", receive: db.run }, dependencies, "postgres");
    for (let i = 0; i < 5; i++) await billing.receive(envelope()).catch(() => {});
    // The fastest of three refusals: one may be stalled past the bound by a GC or the scheduler on a loaded machine,
    // while a refusal that waited (for the 5 s timeout, a backoff) would be slow every time.
    let fastest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const error = await billing.receive(envelope()).catch((e: unknown) => e);
      fastest = Math.min(fastest, performance.now() - started);
      expect(isBreakerOpen(error)).toBe(true);
    }
    expect(fastest).toBeLessThan(50);
    expect(db.calls).toBe(5);
  });

  test("a remote host that hangs times out, and the timeouts open its breaker", async () => {
    const dependencies = new Dependencies({ policies: { "actor-host": { timeoutMs: 20 } } });
    const hanging = guardedHost(
      {
        ask: (_address, _type, _data, options) =>
          new Promise((_, reject) =>
            options?.signal?.addEventListener("abort", () => reject(options.signal?.reason)),
          ),
        receive: () => new Promise(() => {}),
      },
      dependencies,
      "actor-host",
    );
    for (let i = 0; i < 5; i++) {
      const error = await hanging.ask({ type: "order", key: "o1" }, "Get", {}).catch((e: unknown) => e);
      expect((error as EdgewiseError).code).toBe("timeout");
    }
    expect(dependencies.state("actor-host")).toBe("open");
    const snapshot = dependencies.snapshots().find((s) => s.name === "actor-host");
    expect(snapshot?.totals.failure).toBe(5);
    expect(dependencies.transitionCounts()).toContainEqual({
      name: "actor-host",
      from: "closed",
      to: "open",
      count: 1,
    });
  });
});
