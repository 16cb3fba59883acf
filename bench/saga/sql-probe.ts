// Which SQL the embedded PGlite runs, and for how long: reads the wire protocol each client chunk carries.
import { PGlite } from "@electric-sql/pglite";

interface Statement {
  count: number;
  ms: number;
}

/**
 * Wraps `PGlite.prototype.execProtocolRawStream`, the call that runs client messages: the node's in-process
 * connection (deploy/local/pglite/wire.ts) makes it with every complete message it has, pglite-socket once per
 * message. Parse ('P') names a statement's text; Bind ('B') and simple Query ('Q') start one; a call's time (Postgres
 * in WASM, synchronous) counts for the statement last started, so a statement's Execute and the Sync that commits it
 * are its own. To time statements one by one, the probe splits a batch after each Sync and runs the pieces in turn
 * (the same messages, in the same order, a few more calls). Install before the node starts.
 */
export class SqlProbe {
  private readonly texts = new Map<string, string>();
  private current = "(before any statement)";
  private stats = new Map<string, Statement>();
  /** PGlite calls made. */
  chunks = 0;
  /** Protocol messages in them. */
  messages = 0;
  totalMs = 0;

  install(): void {
    const probe = this;
    const proto = PGlite.prototype as unknown as {
      execProtocolRawStream: (message: Uint8Array, options?: unknown) => Promise<void>;
    };
    const stream = proto.execProtocolRawStream;
    proto.execProtocolRawStream = async function (this: unknown, message: Uint8Array, options?: unknown) {
      for (const piece of splitAfterSync(message)) {
        const ran = probe.statementsIn(piece);
        const start = performance.now();
        try {
          await stream.call(this, piece, options);
        } finally {
          probe.record(ran, performance.now() - start);
        }
      }
    };
  }

  reset(): void {
    this.stats = new Map();
    this.chunks = 0;
    this.messages = 0;
    this.totalMs = 0;
  }

  private record(ran: string[], ms: number): void {
    this.chunks++;
    this.totalMs += ms;
    for (const text of ran) {
      const stat = this.stats.get(text) ?? { count: 0, ms: 0 };
      stat.count++;
      this.stats.set(text, stat);
      this.current = text;
    }
    const stat = this.stats.get(this.current) ?? { count: 0, ms: 0 };
    stat.ms += ms;
    this.stats.set(this.current, stat);
  }

  private statementsIn(message: Uint8Array): string[] {
    const ran: string[] = [];
    const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const decoder = new TextDecoder();
    const cstring = (at: number): [string, number] => {
      let end = at;
      while (end < message.length && message[end] !== 0) end++;
      return [decoder.decode(message.subarray(at, end)), end + 1];
    };
    let at = 0;
    while (at + 5 <= message.length) {
      const type = String.fromCharCode(message[at] as number);
      const length = view.getInt32(at + 1);
      const body = at + 5;
      this.messages++;
      if (type === "P") {
        const [name, next] = cstring(body);
        const [text] = cstring(next);
        this.texts.set(name, normalize(text));
      } else if (type === "B") {
        const [, next] = cstring(body);
        const [name] = cstring(next);
        ran.push(this.texts.get(name) ?? `(statement ${name})`);
      } else if (type === "Q") {
        ran.push(normalize(cstring(body)[0]));
      }
      if (length < 4) break;
      at += 1 + length;
    }
    return ran;
  }

  /** The statements by total time, per order. */
  report(orders: number, top = 12) {
    const per = (n: number) => Math.round((n / Math.max(1, orders)) * 100) / 100;
    const statements = [...this.stats].sort((a, b) => b[1].ms - a[1].ms);
    const count = statements.reduce((sum, [, s]) => sum + s.count, 0);
    return {
      statementsPerOrder: per(count),
      pgliteMsPerOrder: per(this.totalMs),
      protocolMessagesPerOrder: per(this.messages),
      pgliteCallsPerOrder: per(this.chunks),
      top: statements.slice(0, top).map(([text, s]) => ({
        sql: text,
        perOrder: per(s.count),
        msPerOrder: per(s.ms),
        shareOfPglite: Math.round((s.ms / Math.max(1e-9, this.totalMs)) * 1000) / 10,
      })),
    };
  }
}

/** The batch cut after each Sync ('S'); a startup message (no type byte) stays whole. */
function splitAfterSync(message: Uint8Array): Uint8Array[] {
  if (message[0] === 0) return [message];
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const pieces: Uint8Array[] = [];
  let from = 0;
  let at = 0;
  while (at + 5 <= message.length) {
    const type = message[at];
    at += 1 + view.getInt32(at + 1);
    if (type === 0x53) {
      pieces.push(message.subarray(from, at));
      from = at;
    }
  }
  if (from < message.length) pieces.push(message.subarray(from));
  return pieces;
}

function normalize(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 160 ? `${flat.slice(0, 157)}...` : flat;
}
