// The fault proxy against a tiny echo server: pass, delay, drop, reset, blackhole and mute, on new and open connections.
import { afterAll, beforeAll, expect, test } from "bun:test";
import net from "node:net";
import { type FaultProxy, Modes, startFaultProxy } from "./fault-proxy.ts";

let echo: net.Server;
let echoPort = 0;
let proxy: FaultProxy;

beforeAll(async () => {
  echo = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.on("data", (chunk) => socket.write(chunk));
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", () => resolve()));
  echoPort = (echo.address() as net.AddressInfo).port;
  proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
});

afterAll(async () => {
  await proxy?.close();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

/** A client connection that records what it received and how it ended. */
async function dial() {
  const socket = net.connect({ host: proxy.host, port: proxy.port });
  const state = { received: "", ended: false, error: undefined as string | undefined, closed: false };
  socket.on("data", (chunk) => {
    state.received += chunk.toString();
  });
  socket.on("end", () => {
    state.ended = true;
  });
  socket.on("error", (error: NodeJS.ErrnoException) => {
    state.error = error.code ?? error.message;
  });
  const closed = new Promise<void>((resolve) =>
    socket.on("close", () => {
      state.closed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return {
    socket,
    state,
    closed,
    /** Sends `text` and waits (up to `ms`) for it to come back; the round trip in ms, or undefined. */
    async roundTrip(text: string, ms = 2000): Promise<number | undefined> {
      const before = state.received.length;
      const started = performance.now();
      socket.write(text);
      while (performance.now() - started < ms) {
        if (state.received.length - before >= text.length) return performance.now() - started;
        if (state.closed) return undefined;
        await Bun.sleep(2);
      }
      return undefined;
    },
  };
}

const within = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true), Bun.sleep(ms).then(() => false)]);

test("pass forwards both ways and counts connections and bytes", async () => {
  proxy.setMode(Modes.pass);
  const before = proxy.stats();
  const conn = await dial();
  expect(await conn.roundTrip("hello")).toBeDefined();
  expect(conn.state.received).toBe("hello");
  const after = proxy.stats();
  expect(after.connections).toBe(before.connections + 1);
  expect(after.bytesUp - before.bytesUp).toBe(5);
  expect(after.bytesDown - before.bytesDown).toBe(5);
  conn.socket.end();
  await conn.closed;
});

test("delay applies to an open connection, in order, without adding up per chunk", async () => {
  proxy.setMode(Modes.pass);
  const conn = await dial();
  // The delay is long enough that each bound below is hundreds of ms from both what is expected and what the
  // defect it catches takes, so a loaded machine's stalls do not decide it.
  // Pass adds no delay: a round trip well under one delay.
  expect(await conn.roundTrip("a")).toBeLessThan(400);
  proxy.setMode(Modes.delay(400));
  const rtt = await conn.roundTrip("b", 5_000);
  expect(rtt).toBeGreaterThanOrEqual(780); // 400 ms each way
  // Ten chunks sent at once arrive about one delay later (400 ms), not ten (4 s), and in order.
  const started = performance.now();
  for (let i = 0; i < 10; i++) conn.socket.write(String(i));
  while (conn.state.received.length < 12 && performance.now() - started < 6_000) await Bun.sleep(5);
  expect(conn.state.received).toBe("ab0123456789");
  expect(performance.now() - started).toBeLessThan(2_000);
  proxy.setMode(Modes.pass);
  expect(await conn.roundTrip("c")).toBeLessThan(400);
  conn.socket.destroy();
});

test("drop closes open connections, and new ones are closed at once", async () => {
  proxy.setMode(Modes.pass);
  const open = await dial();
  expect(await open.roundTrip("x")).toBeDefined();
  proxy.setMode(Modes.drop);
  expect(await within(open.closed, 2000)).toBe(true);
  expect(open.state.error).toBeUndefined(); // a FIN, not a reset

  const fresh = await dial();
  expect(await fresh.roundTrip("y", 500)).toBeUndefined();
  expect(await within(fresh.closed, 2000)).toBe(true);
  expect(fresh.state.received).toBe("");
  expect(proxy.stats().dropped).toBeGreaterThanOrEqual(2);
});

test("reset sends RST to open and new connections", async () => {
  proxy.setMode(Modes.pass);
  const open = await dial();
  expect(await open.roundTrip("x")).toBeDefined();
  proxy.setMode(Modes.reset);
  expect(await within(open.closed, 2000)).toBe(true);
  expect(open.state.error).toBe("ECONNRESET");

  const fresh = await dial().catch((error: NodeJS.ErrnoException) => error);
  if (!(fresh instanceof Error)) {
    await within(fresh.closed, 2000);
    expect(fresh.state.closed).toBe(true);
    expect(fresh.state.received).toBe("");
  }
  expect(proxy.stats().reset).toBeGreaterThanOrEqual(2);
});

test("blackhole: connections stay open and get no answer; healing resets them, new ones work", async () => {
  proxy.setMode(Modes.pass);
  const open = await dial();
  expect(await open.roundTrip("1")).toBeDefined();
  proxy.setMode(Modes.blackhole);
  expect(await open.roundTrip("2", 400)).toBeUndefined();
  expect(open.state.closed).toBe(false);

  const swallowedBefore = proxy.stats().bytesSwallowed;
  const fresh = await dial(); // accepted
  expect(await fresh.roundTrip("3", 400)).toBeUndefined();
  expect(fresh.state.closed).toBe(false);
  expect(proxy.stats().bytesSwallowed).toBeGreaterThan(swallowedBefore);
  expect(proxy.stats().blackholed).toBeGreaterThanOrEqual(1);

  proxy.setMode(Modes.pass);
  // Their streams lost bytes: they are reset, not resumed.
  expect(await within(Promise.all([open.closed, fresh.closed]), 2000)).toBe(true);
  const healed = await dial();
  expect(await healed.roundTrip("4")).toBeDefined();
  expect(healed.state.received).toBe("4");
  healed.socket.destroy();
});

test("mute: the target gets the client's bytes, the client no reply; healing resets the connection", async () => {
  proxy.setMode(Modes.pass);
  const open = await dial();
  expect(await open.roundTrip("1")).toBeDefined();
  proxy.setMode(Modes.mute);
  const upBefore = proxy.stats().bytesUp;
  expect(await open.roundTrip("2345", 400)).toBeUndefined();
  expect(proxy.stats().bytesUp - upBefore).toBe(4); // forwarded to the target, which echoed it
  expect(proxy.stats().bytesSwallowed).toBeGreaterThanOrEqual(4); // and the echo was swallowed
  expect(open.state.closed).toBe(false);

  proxy.setMode(Modes.pass);
  // Its client missed bytes of the reply: it is reset, not resumed.
  expect(await within(open.closed, 2000)).toBe(true);
  const healed = await dial();
  expect(await healed.roundTrip("6")).toBeDefined();
  expect(healed.state.received).toBe("6");
  healed.socket.destroy();
});

test("a target that is down: the client's connection is closed", async () => {
  const dead = await startFaultProxy({ target: { host: "127.0.0.1", port: 1 } });
  try {
    const socket = net.connect({ host: dead.host, port: dead.port });
    socket.on("error", () => {});
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    expect(await within(closed, 3000)).toBe(true);
    expect(dead.stats().upstreamErrors).toBe(1);
  } finally {
    await dead.close();
  }
});

test("close() ends open connections and stops listening", async () => {
  const other = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
  const socket = net.connect({ host: other.host, port: other.port });
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  await other.close();
  expect(await within(closed, 2000)).toBe(true);
  const refused = await new Promise<string>((resolve) => {
    const again = net.connect({ host: other.host, port: other.port });
    again.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    again.on("connect", () => {
      again.destroy();
      resolve("connected");
    });
  });
  expect(refused).toBe("ECONNREFUSED");
});
