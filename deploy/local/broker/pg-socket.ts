// postgres.js's sockets to a real Postgres, for the node's and the broker's pool: joined error and close, hosts in
// turn, and a short reconnect backoff.
import type { EventEmitter } from "node:events";
import net from "node:net";

/**
 * Seconds before a connection tries again after failing: 50 ms doubling to 1 s, with jitter. postgres.js's
 * default grows to 10-20 s after a few failures, so after a minute's outage the pool would stay away that long
 * once Postgres is back; ten connections trying each second cost Postgres nothing.
 */
export const reconnectBackoff = (retries: number, random: () => number = Math.random): number =>
  Math.min(1, 0.05 * 2 ** Math.max(0, retries - 1)) * (0.5 + random() / 2);

/**
 * Holds a socket's `error` back until its `close`, and emits the two together. postgres.js 3.4 rejects a
 * connection's queries on `error`, and a query made in that rejection's handlers (a retry, the next pass of a
 * loop) runs before `close` and is queued on the dying connection; on `close` after an error it never settles
 * it, and whoever awaits it hangs for good (3.4.10 too). With nothing in between, that query goes to a fresh
 * connection. postgres.js 4 has no such gap, but runs the embedded PGlite a third slower (bench/README.md). If
 * `close` never came, the error still goes out after `graceMs`.
 */
export function errorWithClose(socket: EventEmitter, graceMs = 1_000): void {
  const emit = socket.emit;
  let held: unknown[] | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const release = () => {
    clearTimeout(timer);
    const args = held as unknown[];
    held = undefined;
    emit.call(socket, "error", ...args);
  };
  socket.emit = function (this: EventEmitter, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "error" && held === undefined) {
      held = args;
      timer = setTimeout(release, graceMs);
      (timer as { unref?: () => void }).unref?.();
      return true;
    }
    if (event === "close" && held !== undefined) release();
    return emit.call(this, event, ...args);
  } as typeof socket.emit;
}

/**
 * postgres.js's TCP (or Unix socket) connections, with `errorWithClose`. Like postgres.js, each new connection
 * goes to the next of the URL's hosts in turn.
 */
export function tcpSockets(): (options: {
  host: string[];
  port: number[];
  path?: string | false;
}) => net.Socket {
  let next = 0;
  return (options) => {
    const n = next++ % Math.max(1, options.host.length);
    const socket = options.path
      ? net.connect(options.path)
      : net.connect((options.port[n] ?? options.port[0]) as number, options.host[n] as string);
    errorWithClose(socket);
    return socket;
  };
}
