// guardedPort: a store's methods behind a breaker, with `this` and the other members of the store intact.
import { describe, expect, test } from "bun:test";
import { isEdgewiseError } from "../errors/index.ts";
import { Dependencies } from "./dependencies.ts";
import { guardedPort } from "./guarded-port.ts";

/** A store with a private field, as the Postgres adapters have: a wrong `this` would throw. */
class CountingStore {
  #rows = new Map<string, number>();
  calls = 0;
  failing = false;
  async put(key: string, value: number): Promise<void> {
    this.calls++;
    if (this.failing) throw new Error("connection refused");
    this.#rows.set(key, value);
  }
  async get(key: string): Promise<number | undefined> {
    this.calls++;
    if (this.failing) throw new Error("connection refused");
    return this.#rows.get(key);
  }
  label(): string {
    return `rows: ${this.#rows.size}`;
  }
}

describe("guardedPort", () => {
  test("calls go through to the store, with its own `this`", async () => {
    const store = new CountingStore();
    const guarded = guardedPort(store, ["put", "get"], new Dependencies(), "postgres");
    await guarded.put("a", 1);
    expect(await guarded.get("a")).toBe(1);
    expect(store.calls).toBe(2);
    expect(guarded.calls).toBe(2);
    expect(guarded.label()).toBe("rows: 1"); // not guarded, still bound to the store
  });

  test("once the breaker opens, calls fail at once with breaker.open and never reach the store", async () => {
    const store = new CountingStore();
    const dependencies = new Dependencies();
    const guarded = guardedPort(store, ["put", "get"], dependencies, "postgres");
    store.failing = true;
    for (let i = 0; i < 5; i++) await guarded.get("a").catch(() => undefined);
    expect(dependencies.state("postgres")).toBe("open");
    const before = store.calls;
    const refused = await guarded.put("a", 1).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isEdgewiseError(refused) && refused.code).toBe("breaker.open");
    expect(isEdgewiseError(refused) && refused.status).toBe(503);
    expect(store.calls).toBe(before);
  });

  test("a call past the dependency's timeout is cut off", async () => {
    // The store answers after 10 s, and the default timeout is 5 s: only the configured 20 ms ends the call within
    // the 2 s bound, which leaves a loaded machine's stalls a wide margin.
    let answer: ReturnType<typeof setTimeout> | undefined;
    const slow = {
      get: () => new Promise<number>((resolve) => (answer = setTimeout(() => resolve(1), 10_000))),
    };
    const dependencies = new Dependencies({ policies: { postgres: { timeoutMs: 20 } } });
    const guarded = guardedPort(slow, ["get"], dependencies, "postgres");
    const started = performance.now();
    try {
      await expect(guarded.get()).rejects.toThrow();
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      clearTimeout(answer);
    }
  });

  test("a method named in `signals` gets the call's signal, which fires at the timeout and with the caller's", async () => {
    const seen: Array<AbortSignal | undefined> = [];
    const store = {
      async create(_key: string, _record?: unknown, signal?: AbortSignal): Promise<boolean> {
        seen.push(signal);
        await new Promise((resolve) => setTimeout(resolve, 100));
        return signal?.aborted ?? false;
      },
    };
    const dependencies = new Dependencies({ policies: { postgres: { timeoutMs: 20 } } });
    const guarded = guardedPort(store, ["create"], dependencies, "postgres", { create: 2 });
    // No signal from the caller: the method still gets one, and it has fired by the time the call timed out.
    const timedOut = await guarded.create("a").then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isEdgewiseError(timedOut) && timedOut.code).toBe("timeout");
    expect(seen[0]).toBeInstanceOf(AbortSignal);
    expect(seen[0]?.aborted).toBe(true);
    // The caller's signal ends the call, and the method's signal with it.
    const patient = new Dependencies();
    const caller = new AbortController();
    const call = guardedPort(store, ["create"], patient, "postgres", { create: 2 }).create(
      "b",
      undefined,
      caller.signal,
    );
    caller.abort(new Error("the request's deadline"));
    await expect(call).rejects.toThrow("the request's deadline");
    expect(seen[1]).not.toBe(caller.signal);
    expect(seen[1]?.aborted).toBe(true);
  });
});
