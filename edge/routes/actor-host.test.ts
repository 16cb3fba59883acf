// A split deployment in process: a gateway whose actors live behind a signed HTTP actor host (forgeries and replays: test/security/deliveries.test.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { RemoteActorHost } from "../../actors/hosts/remote/client.ts";
import { onlyIfStateMember } from "../../actors/hosts/remote/protocol.ts";
import { actorClient, askEnvelope } from "../../actors/runtime/index.ts";
import { parseEnvelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { createApp } from "../app.ts";

const secret = "actor-host-secret-for-tests-0123456789";
const local = new LocalActorHost({
  actors: [counterActor],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-remote-")), "actors.db")),
});
afterAll(() => local.stop());
const actorNode = createApp({ actors: local, actorHost: { secret } });
const viaNode = (input: string | URL | Request, init?: RequestInit) =>
  actorNode.request(input instanceof Request ? input : String(input), init);
const remote = new RemoteActorHost({
  baseUrl: "http://actors.internal",
  secret,
  fetch: viaNode as typeof fetch,
});
const gateway = createApp({ actors: remote });

describe("remote actor host", () => {
  test("a gateway asks actors on another node; the reply and typed errors come back", async () => {
    const response = await gateway.request("/v1/counters/r1/increment", {
      method: "POST",
      body: '{"by":4}',
      headers: { "content-type": "application/json" },
    });
    expect(await response.json()).toEqual({ count: 4 });
    expect(local.inspect({ type: "counter", key: "r1" }).state).toEqual({ count: 4 });
    const error = await remote.ask({ type: "counter", key: "r1" }, "Nope", {}).catch((caught) => caught);
    expect(error).toBeInstanceOf(EdgewiseError);
    expect((error as EdgewiseError).code).toBe("message.unknown_type");
  });
});

describe("remote actor host: the shared secret", () => {
  const withSecret = (other: string) =>
    new RemoteActorHost({ baseUrl: "http://actors.internal", secret: other, fetch: viaNode as typeof fetch });

  test("ping proves the hop and the secret without a turn; a wrong secret is refused by name", async () => {
    const before = local.stats().activeActors;
    await remote.ping();
    expect(local.stats().activeActors).toBe(before);
    const wrong = withSecret("another-secret-another-secret-0123");
    const refused = await wrong.ping().catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(EdgewiseError);
    expect((refused as Error).message).toContain("ACTOR_HOST_SECRET differs");
  });

  test("an ask with a wrong secret says so in the log, not 'actor host failed'", async () => {
    const error = await withSecret("another-secret-another-secret-0123")
      .ask({ type: "counter", key: "s1" }, "Increment", { by: 1 })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "internal" });
    expect((error as Error).message).toContain("refused this gateway's signature");
  });
});

describe("remote actor host: one retry on a failed connection", () => {
  const connectionReset = () => Object.assign(new TypeError("socket closed"), { code: "ECONNRESET" });

  test("a reset after the request reached the actor host is retried once and applied once", async () => {
    let calls = 0;
    const flaky = new RemoteActorHost({
      baseUrl: "http://actors.internal",
      secret,
      fetch: (async (input: string | URL | Request, init?: RequestInit) => {
        calls += 1;
        const response = await viaNode(input, init);
        // The first answer is lost with its connection: the turn ran, but the gateway never saw the reply.
        if (calls === 1) throw connectionReset();
        return response;
      }) as typeof fetch,
    });
    const outcome = await flaky.ask({ type: "counter", key: "retry1" }, "Increment", { by: 5 });
    expect(calls).toBe(2);
    expect(outcome).toEqual({ duplicate: true, reply: { count: 5 } });
    expect(local.inspect({ type: "counter", key: "retry1" }).state).toEqual({ count: 5 });
  });

  test("no retry after a second reset, an abort, a non-connection error, or any HTTP answer", async () => {
    const attempts = async (fail: (call: number) => unknown, signal?: AbortSignal) => {
      let calls = 0;
      const host = new RemoteActorHost({
        baseUrl: "http://actors.internal",
        secret,
        fetch: (async () => {
          calls += 1;
          const outcome = fail(calls);
          if (outcome instanceof Response) return outcome;
          throw outcome;
        }) as unknown as typeof fetch,
      });
      const error = await host
        .ask({ type: "counter", key: "retry2" }, "Increment", { by: 1 }, signal ? { signal } : {})
        .catch((caught: unknown) => caught);
      return { calls, code: (error as EdgewiseError).code };
    };
    expect(await attempts(() => connectionReset())).toEqual({ calls: 2, code: "unavailable" });
    expect(await attempts(() => Object.assign(new TypeError("refused"), { code: "ECONNREFUSED" }))).toEqual({
      calls: 2,
      code: "unavailable",
    });
    expect(await attempts(() => new TypeError("certificate has expired"))).toEqual({
      calls: 1,
      code: "unavailable",
    });
    expect(await attempts(() => new DOMException("timed out", "TimeoutError"))).toEqual({
      calls: 1,
      code: "unavailable",
    });
    const aborted = AbortSignal.abort();
    expect(await attempts(() => connectionReset(), aborted)).toEqual({ calls: 1, code: "timeout" });
    expect(await attempts(() => new Response("busy", { status: 503 }))).toEqual({
      calls: 1,
      code: "unavailable",
    });
    expect(local.inspect({ type: "counter", key: "retry2" }).state).toBeUndefined();
  });
});

describe("remote actor host: an ask only if the actor has state (onlyIfState)", () => {
  const counter = (key: string) => ({ type: "counter", key });
  /** A gateway's remote host that counts its requests to `node`. */
  const counted = (node: { request: typeof actorNode.request } = actorNode) => {
    const host = new RemoteActorHost({
      baseUrl: "http://actors.internal",
      secret,
      fetch: ((input: string | URL | Request, init?: RequestInit) => {
        counted.requests += 1;
        return node.request(input instanceof Request ? input : String(input), init);
      }) as typeof fetch,
    });
    counted.requests = 0;
    return host;
  };
  counted.requests = 0;

  test("an actor without state is answered noState in that one request, and none is activated; one with state answers", async () => {
    const gateway = counted();
    const before = local.stats().activeActors;
    for (let n = 0; n < 20; n++) {
      expect(await gateway.ask(counter(`absent-${n}`), "Get", {}, { onlyIfState: true })).toEqual({
        duplicate: false,
        reply: undefined,
        noState: true,
      });
    }
    expect(counted.requests).toBe(20);
    expect(local.stats().activeActors).toBe(before);
    expect(local.hasState(counter("absent-0"))).toBe(false);

    // An actor with state: its reply, in one request as without the option.
    await gateway.ask(counter("present"), "Increment", { by: 2 });
    counted.requests = 0;
    expect(await gateway.ask(counter("present"), "Get", {}, { onlyIfState: true })).toEqual({
      duplicate: false,
      reply: { count: 2 },
    });
    expect(counted.requests).toBe(1);
    // The typed client's askIfState: undefined for no state, the reply otherwise.
    const counters = actorClient(gateway, counterActor);
    expect(await counters.askIfState("absent-0", "Get", {})).toBeUndefined();
    expect(await counters.askIfState("present", "Get", {})).toEqual({ count: 2 });
    // Checked as an ask is: an unknown type or a bad key is refused, not told "no state".
    const refused = await gateway
      .ask({ type: "nobody", key: "k" }, "Get", {}, { onlyIfState: true })
      .catch((caught: unknown) => caught);
    expect((refused as EdgewiseError).code).toBe("actor.unknown_type");
    expect(local.stats().activeActors).toBe(before + 1);
  });

  test("an ask without it (as an older gateway sends) runs as before and activates its actor", async () => {
    const before = local.stats().activeActors;
    expect(await remote.ask(counter("asked-plainly"), "Get", {})).toEqual({
      duplicate: false,
      reply: { count: 0 },
    });
    expect(local.stats().activeActors).toBe(before + 1);
  });

  test("an actor host that predates it ignores the member: the ask runs, and its reply comes back", async () => {
    // Such a host reads an ask's body with parseEnvelope only, which drops the member with every unknown one.
    const envelope = askEnvelope(counter("old-host"), "Get", {});
    expect(parseEnvelope({ ...envelope, [onlyIfStateMember]: true })).toEqual(parseEnvelope(envelope));
    // Its route passed the envelope's attributes to the host, never the option: so does this node's host.
    const older = createApp({
      actors: {
        ask: (address, type, data, { onlyIfState: _dropped, ...options } = {}) =>
          local.ask(address, type, data, options),
        receive: (delivery) => local.receive(delivery),
      },
      actorHost: { secret },
    });
    const gateway = counted(older);
    expect(await gateway.ask(counter("old-host"), "Get", {}, { onlyIfState: true })).toEqual({
      duplicate: false,
      reply: { count: 0 },
    });
    expect(counted.requests).toBe(1);
    expect(local.hasState(counter("old-host"))).toBe(true);
  });
});

describe("remote actor host: trace context", () => {
  test("an ask's traceparent, tracestate and correlation id reach the actor host's ask as the gateway gave them", async () => {
    const seen: Array<Record<string, unknown>> = [];
    const recording = createApp({
      actors: {
        ask: (address, type, data, options = {}) => {
          const { signal: _signal, ...given } = options;
          seen.push(given);
          return local.ask(address, type, data, options);
        },
        receive: (delivery) => local.receive(delivery),
      },
      actorHost: { secret },
    });
    const gateway = new RemoteActorHost({
      baseUrl: "http://actors.internal",
      secret,
      fetch: ((input: string | URL | Request, init?: RequestInit) =>
        recording.request(input instanceof Request ? input : String(input), init)) as typeof fetch,
    });
    const trace = {
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      tracestate: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
      correlationid: "order-trace-1",
    };
    await gateway.ask({ type: "counter", key: "traced" }, "Get", {}, trace);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject(trace);
  });
});
