// A raw HTTP/1.1 client on node:net for hostile-client tests: sends bytes as given (malformed, trickled, cut off) and
// reports the first answer and when the server closed the connection.
import { connect } from "node:net";

export interface RawExchangeOptions {
  /** Sent at once: the request line and headers, and any body bytes that go with them. */
  head: string | Uint8Array;
  /** Then these bytes, one write every `everyMs`, until the server answers or closes, or `waitMs` ends. */
  trickle?: { bytes: string; everyMs: number };
  /** Close the connection this long after connecting, without waiting for an answer. */
  hangUpAfterMs?: number;
  /** How long to wait for the answer and the server's close. Default 5 s. */
  waitMs?: number;
  /** Once answered, how long to wait for the server's close at most. Default: until `waitMs`. */
  closeWaitMs?: number;
}

export interface RawExchange {
  /** The first answer's status; 0 when none came. */
  status: number;
  /** Its headers, names lowercased (the first of a repeated one). */
  headers: Map<string, string>;
  /** Its body as text (by Content-Length when given, else everything after the head). */
  body: string;
  /** Milliseconds from connecting to the first byte of an answer. */
  answeredMs?: number;
  /** Milliseconds from connecting to the server's close; undefined when it kept the connection open. */
  closedMs?: number;
}

export function rawExchange(port: number, options: RawExchangeOptions): Promise<RawExchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let answeredMs: number | undefined;
    let closedMs: number | undefined;
    let hungUp = false;
    let trickle: ReturnType<typeof setInterval> | undefined;
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.write(options.head);
      if (options.trickle) {
        const { bytes, everyMs } = options.trickle;
        trickle = setInterval(() => {
          if (answeredMs === undefined && !socket.destroyed) socket.write(bytes);
        }, everyMs);
      }
      if (options.hangUpAfterMs !== undefined) {
        setTimeout(() => {
          hungUp = true;
          socket.destroy();
        }, options.hangUpAfterMs);
      }
    });
    // Flowing mode: without a reader, Node would never report the server's FIN.
    socket.on("data", (chunk: Buffer) => {
      if (answeredMs === undefined && options.closeWaitMs !== undefined)
        setTimeout(finish, options.closeWaitMs);
      answeredMs ??= Date.now() - started;
      chunks.push(chunk);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      if (!hungUp) closedMs ??= Date.now() - started;
      finish();
    });
    const timer = setTimeout(finish, options.waitMs ?? 5_000);
    let settled = false;
    function finish() {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(trickle);
      socket.destroy();
      resolve({ ...parse(Buffer.concat(chunks).toString("latin1")), answeredMs, closedMs });
    }
  });
}

function parse(text: string): Pick<RawExchange, "status" | "headers" | "body"> {
  const headers = new Map<string, string>();
  const end = text.indexOf("\r\n\r\n");
  if (end === -1) return { status: 0, headers, body: "" };
  const [statusLine = "", ...lines] = text.slice(0, end).split("\r\n");
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    if (colon > 0 && !headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  const length = Number(headers.get("content-length") ?? Number.NaN);
  const rest = text.slice(end + 4);
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0),
    headers,
    body: Number.isFinite(length) ? rest.slice(0, length) : rest,
  };
}
