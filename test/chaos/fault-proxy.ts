// A TCP fault proxy for chaos tests: listens on 127.0.0.1, forwards to a target, and injects faults on demand.
import net from "node:net";

/**
 * - `pass`: forward both ways.
 * - `delay`: forward each chunk `ms` later (order kept per direction).
 * - `drop`: close (FIN) every connection; new ones are accepted, then closed at once.
 * - `reset`: destroy every connection with a TCP RST; new ones are accepted, then reset at once.
 * - `blackhole`: accept and read, never forward nor answer: connections hang. A connection that was blackholed
 *   has lost bytes, so once the mode changes again it is reset rather than resumed with a corrupt stream.
 * - `mute`: forward the client's bytes, swallow the target's replies: a statement reaches the database and
 *   commits, but the client never hears so (a reply lost to a reset). Reset, like a blackhole, on leaving it.
 */
export type FaultMode =
  | { kind: "pass" }
  | { kind: "delay"; ms: number }
  | { kind: "drop" }
  | { kind: "reset" }
  | { kind: "blackhole" }
  | { kind: "mute" };

export const Modes = {
  pass: { kind: "pass" } as FaultMode,
  drop: { kind: "drop" } as FaultMode,
  reset: { kind: "reset" } as FaultMode,
  blackhole: { kind: "blackhole" } as FaultMode,
  mute: { kind: "mute" } as FaultMode,
  delay: (ms: number): FaultMode => ({ kind: "delay", ms }),
};

export interface FaultProxyStats {
  /** Connections accepted since the start. */
  connections: number;
  /** Connections open now. */
  active: number;
  /** Bytes forwarded client → target and target → client. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes read and thrown away (blackhole). */
  bytesSwallowed: number;
  /** Connections closed by `drop`, reset by `reset`, and accepted while blackholed. */
  dropped: number;
  reset: number;
  blackholed: number;
  /** Upstream connection attempts that failed. */
  upstreamErrors: number;
}

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** `host:port` of the proxy, for building URLs. */
  readonly address: string;
  readonly mode: FaultMode;
  setMode(mode: FaultMode): void;
  stats(): FaultProxyStats;
  close(): Promise<void>;
}

interface Pipe {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Chunks from the client that arrived before the upstream connected. */
  early: Buffer[];
  /** Saw a blackhole: bytes were lost, so the stream cannot be resumed. */
  tainted: boolean;
  /** Per-direction chains, so that delayed chunks keep their order. */
  upChain: Promise<void>;
  downChain: Promise<void>;
  closed: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function rst(socket: net.Socket | undefined): void {
  if (!socket || socket.destroyed) return;
  const withReset = socket as net.Socket & { resetAndDestroy?: () => void };
  try {
    if (typeof withReset.resetAndDestroy === "function") withReset.resetAndDestroy();
    else socket.destroy();
  } catch {
    socket.destroy();
  }
}

function fin(socket: net.Socket | undefined): void {
  if (!socket || socket.destroyed) return;
  socket.end();
  // A peer that never closes its side must not keep the socket (and the test) alive.
  setTimeout(() => socket.destroy(), 1000).unref?.();
}

export async function startFaultProxy(options: {
  target: { host: string; port: number };
  mode?: FaultMode;
  /** Default 0: a free port. */
  port?: number;
}): Promise<FaultProxy> {
  const { target } = options;
  let mode: FaultMode = options.mode ?? Modes.pass;
  const pipes = new Set<Pipe>();
  const stats: FaultProxyStats = {
    connections: 0,
    active: 0,
    bytesUp: 0,
    bytesDown: 0,
    bytesSwallowed: 0,
    dropped: 0,
    reset: 0,
    blackholed: 0,
    upstreamErrors: 0,
  };

  const finish = (pipe: Pipe) => {
    if (pipe.closed) return;
    pipe.closed = true;
    pipes.delete(pipe);
    stats.active--;
  };

  const forward = (pipe: Pipe, chunk: Buffer, direction: "up" | "down") => {
    if (mode.kind === "blackhole" || pipe.tainted || (mode.kind === "mute" && direction === "down")) {
      // A muted connection is reset when the mode changes; until then its client's bytes still go up.
      if (mode.kind !== "mute") pipe.tainted = true;
      stats.bytesSwallowed += chunk.length;
      return;
    }
    const to = direction === "up" ? pipe.upstream : pipe.client;
    const send = () => {
      if (!to || to.destroyed || pipe.closed) return;
      if (direction === "up") stats.bytesUp += chunk.length;
      else stats.bytesDown += chunk.length;
      to.write(chunk);
    };
    // Each chunk is due `ms` after it arrived; the chain keeps the order, so delays do not add up.
    const dueAt = Date.now() + (mode.kind === "delay" ? mode.ms : 0);
    const chain = direction === "up" ? pipe.upChain : pipe.downChain;
    const next = chain.then(async () => {
      const wait = dueAt - Date.now();
      if (wait > 0) await sleep(wait);
      send();
    });
    if (direction === "up") pipe.upChain = next;
    else pipe.downChain = next;
  };

  const connectUpstream = (pipe: Pipe) => {
    const upstream = net.connect({ host: target.host, port: target.port });
    pipe.upstream = upstream;
    upstream.setNoDelay(true);
    let connected = false;
    upstream.on("connect", () => {
      connected = true;
      for (const chunk of pipe.early.splice(0)) forward(pipe, chunk, "up");
    });
    upstream.on("data", (chunk: Buffer) => forward(pipe, chunk, "down"));
    upstream.on("error", () => {
      if (!connected) stats.upstreamErrors++;
    });
    upstream.on("close", () => {
      if (pipe.tainted || mode.kind === "blackhole") return; // a blackhole hides the upstream's close too
      // Let queued (delayed) chunks go out before the client sees the close.
      void pipe.downChain.then(() => fin(pipe.client));
    });
  };

  const server = net.createServer({ pauseOnConnect: false }, (client) => {
    stats.connections++;
    stats.active++;
    client.setNoDelay(true);
    const pipe: Pipe = {
      client,
      upstream: undefined,
      early: [],
      tainted: false,
      upChain: Promise.resolve(),
      downChain: Promise.resolve(),
      closed: false,
    };
    pipes.add(pipe);
    client.on("error", () => {});
    client.on("close", () => {
      finish(pipe);
      if (pipe.upstream && !pipe.upstream.destroyed) {
        if (pipe.tainted) rst(pipe.upstream);
        else void pipe.upChain.then(() => fin(pipe.upstream));
      }
    });
    switch (mode.kind) {
      case "drop":
        stats.dropped++;
        fin(client);
        return;
      case "reset":
        stats.reset++;
        rst(client);
        return;
      case "blackhole":
        stats.blackholed++;
        pipe.tainted = true;
        client.on("data", (chunk: Buffer) => {
          stats.bytesSwallowed += chunk.length;
        });
        return;
      default:
        client.on("data", (chunk: Buffer) => {
          if (pipe.tainted || mode.kind === "blackhole" || (pipe.upstream && !pipe.upstream.connecting))
            forward(pipe, chunk, "up");
          else pipe.early.push(chunk);
        });
        connectUpstream(pipe);
    }
  });
  server.on("error", () => {});

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    host: "127.0.0.1",
    port,
    address: `127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    setMode(next: FaultMode) {
      const previous = mode;
      mode = next;
      for (const pipe of [...pipes]) {
        switch (next.kind) {
          case "drop":
            stats.dropped++;
            fin(pipe.client);
            fin(pipe.upstream);
            break;
          case "reset":
            stats.reset++;
            rst(pipe.client);
            rst(pipe.upstream);
            break;
          case "blackhole":
            pipe.tainted = true;
            pipe.early = [];
            break;
          default:
            // Leaving a blackhole: a stream that lost bytes cannot be resumed.
            if (pipe.tainted || previous.kind === "blackhole" || previous.kind === "mute") {
              stats.reset++;
              rst(pipe.client);
              rst(pipe.upstream);
            }
        }
      }
    },
    stats: () => ({ ...stats }),
    async close() {
      for (const pipe of [...pipes]) {
        rst(pipe.client);
        rst(pipe.upstream);
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `url` (a database URL) with its host and port replaced by the proxy's. */
export function proxiedUrl(
  proxy: FaultProxy,
  url = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
): string {
  const proxied = new URL(url);
  proxied.host = proxy.address;
  return proxied.href;
}
