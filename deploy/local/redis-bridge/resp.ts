// RESP2 wire format for the bridge: binary-safe command encoding and a resumable, streaming reply parser.

/** A simple-string reply (`+OK`, `+PONG`, `+QUEUED`), kept apart from bulk strings for Upstash's base64 rule. */
export class SimpleString {
  constructor(readonly text: string) {}
}

/** An error reply (`-ERR …`), as a value: inside EXEC results it is one entry among others. */
export class ErrorReply {
  constructor(readonly message: string) {}
}

/** Bulk strings stay bytes, so values that are not UTF-8 survive the trip. */
export type Reply = null | number | Uint8Array | SimpleString | ErrorReply | Reply[];

export type Arg = string | Uint8Array;

const CRLF = Buffer.from("\r\n");

/** One buffer with every command, so a batch reaches the socket as a single contiguous write. */
export function encodeCommands(commands: readonly (readonly Arg[])[]): Buffer {
  const parts: Buffer[] = [];
  for (const command of commands) {
    parts.push(Buffer.from(`*${command.length}\r\n`));
    for (const arg of command) {
      const bytes = typeof arg === "string" ? Buffer.from(arg, "utf8") : arg;
      parts.push(Buffer.from(`$${bytes.byteLength}\r\n`), Buffer.from(bytes), CRLF);
    }
  }
  return Buffer.concat(parts);
}

export class ProtocolError extends Error {}

interface Frame {
  items: Reply[];
  left: number;
}

const INCOMPLETE = Symbol("incomplete");
const ARRAY = Symbol("array");
type Step = Reply | typeof INCOMPLETE | { [ARRAY]: number };

/**
 * Parses replies as bytes arrive. Open arrays live on a stack, so a large reply split over many chunks is
 * parsed once rather than from the start on every chunk; `need` avoids re-joining chunks of a long bulk string.
 */
export class ReplyParser {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = 0;
  private readonly stack: Frame[] = [];

  constructor(private readonly onReply: (reply: Reply) => void) {}

  push(chunk: Uint8Array): void {
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.byteLength;
    if (this.buf.length - this.pos + this.pendingBytes < this.need) return;
    this.buf = Buffer.concat([this.buf.subarray(this.pos), ...this.pending]);
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.need = 0;
    this.drain();
  }

  private drain(): void {
    for (;;) {
      const step = this.step();
      if (step === INCOMPLETE) return;
      let value: Reply;
      if (step !== null && typeof step === "object" && ARRAY in step) {
        if (step[ARRAY] > 0) {
          this.stack.push({ items: [], left: step[ARRAY] });
          continue;
        }
        value = step[ARRAY] === 0 ? [] : null;
      } else {
        value = step;
      }
      for (;;) {
        const top = this.stack.at(-1);
        if (!top) {
          this.onReply(value);
          break;
        }
        top.items.push(value);
        if (--top.left > 0) break;
        this.stack.pop();
        value = top.items;
      }
    }
  }

  /** One scalar or array header at `pos`; INCOMPLETE (and `need` set) when its bytes have not all arrived. */
  private step(): Step {
    const { buf, pos } = this;
    if (pos >= buf.length) {
      this.need = 1;
      return INCOMPLETE;
    }
    const lineEnd = buf.indexOf(CRLF, pos + 1);
    if (lineEnd < 0) {
      this.need = buf.length - pos + 1;
      return INCOMPLETE;
    }
    const type = buf[pos];
    const line = buf.toString("utf8", pos + 1, lineEnd);
    const next = lineEnd + 2;
    switch (type) {
      case 0x2b: // +
        this.pos = next;
        return new SimpleString(line);
      case 0x2d: // -
        this.pos = next;
        return new ErrorReply(line);
      case 0x3a: // :
        this.pos = next;
        return Number(line);
      case 0x24: {
        // $
        const length = Number.parseInt(line, 10);
        if (length < 0) {
          this.pos = next;
          return null;
        }
        const end = next + length;
        if (end + 2 > buf.length) {
          this.need = end + 2 - pos;
          return INCOMPLETE;
        }
        this.pos = end + 2;
        return Uint8Array.prototype.slice.call(buf, next, end);
      }
      case 0x2a: // *
        this.pos = next;
        return { [ARRAY]: Number.parseInt(line, 10) };
      default:
        throw new ProtocolError(`unexpected RESP type byte 0x${(type ?? 0).toString(16)}`);
    }
  }
}
