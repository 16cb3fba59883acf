// postgres.js's sockets to a real Postgres, for the node's and the broker's pool: joined error and close, TLS as the
// URL's sslmode asks, hosts in turn, and a short reconnect backoff.
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";

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
 *
 * Known gap, not ours to close here: a connection reset in the instant its query's answer arrives makes Bun 1.4.4
 * report an unhandled rejection (`read ECONNRESET`, at its `node:net` close) that no listener here sees; the pool
 * and its queries recover, and Bun goes on serving, but the line is printed and the exit code becomes 1.
 */
export function errorWithClose<S extends EventEmitter>(socket: S, graceMs = 1_000): S {
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
  return socket;
}

/** What the URL asks of a connection's TLS, read as libpq reads `sslmode`, `sslrootcert` and `sslnegotiation`. */
export interface PgTls {
  mode: "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";
  /** PEM of the CAs to trust (`sslrootcert=<file>`); the system's when unset or `system`. */
  ca?: string;
  /** This client's certificate and key, PEM (`sslcert=<file>` and `sslkey=<file>`), for a server that asks for one. */
  cert?: string;
  key?: string;
  /** `sslnegotiation=direct` (Postgres 17): TLS at once, with ALPN `postgresql`, no SSLRequest first. */
  direct: boolean;
}

const sslModes = new Set(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]);
const tlsParams = ["sslmode", "sslrootcert", "sslnegotiation", "sslcert", "sslkey"];

/**
 * Splits the URL's TLS parameters off: the URL postgres.js gets (without them, so none goes to the server as a
 * startup parameter) and what they ask for (undefined: no TLS, postgres.js's default). As in libpq,
 * `sslrootcert=system` means verify-full, and `require` with a root certificate file means verify-ca; a root
 * certificate file with no sslmode means verify-full (stricter than libpq's `prefer`, which would fall back to
 * plain text). `sslcert` and `sslkey` give a client certificate. Files are read here, so a missing one fails at
 * start.
 */
export function tlsFromUrl(url: string): { url: string; tls: PgTls | undefined } {
  const at = url.indexOf("?");
  if (at < 0) return { url, tls: undefined };
  const params = new URLSearchParams(url.slice(at + 1));
  if (!tlsParams.some((name) => params.has(name))) return { url, tls: undefined };
  const rootCert = params.get("sslrootcert");
  let mode = params.get("sslmode") ?? (rootCert ? "verify-full" : "prefer");
  if (mode === "false") mode = "disable";
  if (rootCert === "system") mode = "verify-full";
  else if (rootCert && mode === "require") mode = "verify-ca";
  if (!sslModes.has(mode))
    throw new Error(`sslmode must be one of ${[...sslModes].join(", ")}; got "${mode}"`);
  const certFile = params.get("sslcert");
  const keyFile = params.get("sslkey");
  if (Boolean(certFile) !== Boolean(keyFile)) throw new Error("sslcert and sslkey go together");
  const tlsAsked: PgTls = {
    mode: mode as PgTls["mode"],
    direct: params.get("sslnegotiation") === "direct",
    ...(rootCert && rootCert !== "system" ? { ca: readFileSync(rootCert, "utf8") } : {}),
    ...(certFile && keyFile
      ? { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") }
      : {}),
  };
  for (const name of tlsParams) params.delete(name);
  const rest = params.toString();
  return {
    url: url.slice(0, at) + (rest ? `?${rest}` : ""),
    tls: tlsAsked.mode === "disable" ? undefined : tlsAsked,
  };
}

/**
 * postgres.js's connections: TCP (or a Unix socket), with `errorWithClose`. Like postgres.js, each new connection
 * goes to the next of the URL's hosts in turn.
 *
 * With TLS, the connection is made here, up to the end of the handshake, and postgres.js is given the TLS socket
 * (and `ssl: false`). postgres.js would upgrade a socket it was given itself, but its TLS socket would then have
 * neither `errorWithClose` (so a reset could strand a query, as above) nor the server's name (no SNI, which
 * managed Postgres services route by, and no hostname to verify).
 */
export function pgSockets(
  tlsAsked?: PgTls,
): (options: {
  host: string[];
  port: number[];
  path?: string | false;
  connect_timeout?: number;
}) => net.Socket | Promise<net.Socket> {
  let next = 0;
  return (options) => {
    const n = next++ % Math.max(1, options.host.length);
    if (options.path) return errorWithClose(net.connect(options.path));
    const host = options.host[n] as string;
    const port = (options.port[n] ?? options.port[0]) as number;
    if (!tlsAsked) return errorWithClose(net.connect(port, host));
    return secureSocket(host, port, tlsAsked, (options.connect_timeout ?? 30) * 1000);
  };
}

/** SSLRequest: length 8, code 80877103. */
export const sslRequest = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

async function secureSocket(
  host: string,
  port: number,
  asked: PgTls,
  timeoutMs: number,
): Promise<net.Socket> {
  const raw = net.connect(port, host);
  const timer = setTimeout(
    () => raw.destroy(new Error(`connecting to ${host}:${port} timed out`)),
    timeoutMs,
  );
  let connected = false;
  try {
    await settled(raw, "connect");
    connected = true;
    if (!asked.direct) {
      raw.write(sslRequest);
      const answer = await settled<Buffer>(raw, "data");
      if (answer.length !== 1 || answer[0] !== 0x53) {
        // "N": this server has no TLS. `allow` and `prefer` go on without it, on the same connection.
        if (answer.length === 1 && answer[0] === 0x4e && (asked.mode === "allow" || asked.mode === "prefer"))
          return errorWithClose(raw);
        throw new Error(
          answer[0] === 0x4e
            ? `server does not support SSL, but sslmode=${asked.mode} requires it`
            : "unexpected answer to the SSL request",
        );
      }
    }
    const verify = asked.mode === "verify-ca" || asked.mode === "verify-full";
    const secure = tls.connect({
      socket: raw,
      ...(net.isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: verify,
      ...(asked.ca ? { ca: asked.ca } : {}),
      ...(asked.cert ? { cert: asked.cert, key: asked.key } : {}),
      ...(asked.mode === "verify-ca" ? { checkServerIdentity: () => undefined } : {}),
      ...(asked.direct ? { ALPNProtocols: ["postgresql"] } : {}),
    });
    await settled(secure, "secureConnect");
    return errorWithClose(secure);
  } catch (error) {
    raw.destroy();
    // A failure once connected is the TLS's: said so, for whoever reports it (a refused connection stays as it is).
    return failedSocket(connected ? tlsFailure(error, host, port) : error);
  } finally {
    clearTimeout(timer);
  }
}

/** `code: "PG_TLS"`: the TLS negotiation or handshake with Postgres failed. */
export function tlsFailure(error: unknown, host: string, port: number): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return Object.assign(new Error(`TLS to Postgres at ${host}:${port} failed: ${reason}`, { cause: error }), {
    code: "PG_TLS",
  });
}

/** Resolves with the first `event`'s argument; rejects on `error` or `close` before it. */
function settled<T = void>(emitter: EventEmitter, event: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = () => {
      emitter.off(event, onEvent);
      emitter.off("error", onError);
      emitter.off("close", onClose);
    };
    const onEvent = (value: T) => {
      cleanup();
      resolve(value);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => {
      cleanup();
      reject(new Error("the connection closed before the TLS handshake finished"));
    };
    emitter.once(event, onEvent);
    emitter.once("error", onError);
    emitter.once("close", onClose);
  });
}

/**
 * A connection that could not be made (refused, timed out, no TLS where it is required, a certificate refused): it
 * fails as a TCP socket that failed would, with `error` and then `close` once postgres.js listens, so the query
 * waiting for it fails with the reason and the pool tries again later.
 */
function failedSocket(error: unknown): net.Socket {
  const socket = new EventEmitter() as EventEmitter & Record<string, unknown>;
  Object.assign(socket, {
    readyState: "closed",
    write: () => true,
    end: () => socket,
    destroy: () => socket,
    setKeepAlive: () => socket,
    pause: () => socket,
    resume: () => socket,
  });
  setImmediate(() => {
    socket.emit("error", error);
    socket.emit("close", true);
  });
  return socket as unknown as net.Socket;
}
