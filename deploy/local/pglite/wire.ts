// An in-process Postgres wire connection to PGlite: the socket postgres.js is given (its `socket` option) instead of TCP.
import { EventEmitter } from "node:events";
import type { PGlite } from "@electric-sql/pglite";
import type { PGliteGate } from "./quiet-instant.ts";

/** The first message's code on a connection that asks for TLS; answered "N" (no TLS), as pglite-socket does. */
const SSL_REQUEST = 80877103;
/** `X`: the client ends the session. */
const TERMINATE = 0x58;

/**
 * Why not pglite-socket over loopback TCP, which this replaced for the node's own pool: in the saga bench the TCP
 * hop was about a fifth of the node's thread (pglite-socket writes each reply chunk to the socket on its own and runs
 * each protocol message as a separate PGlite call; postgres.js then reads it back through `node:net`). Here the
 * bytes postgres.js writes go to PGlite as they are, every complete message in one PGlite call, and the
 * reply comes back as one `data` event. It is the same wire protocol, so postgres.js behaves as it does against a
 * real server (pipelining, prepared statements, errors and transactions).
 *
 * It implements what postgres.js uses of a `net.Socket`: `write`, `end`, `destroy`, `readyState`, the `data`,
 * `error` and `close` events, and `pause`/`resume` (no-ops: COPY streams are not used here).
 */
export class PGliteWire extends EventEmitter {
  readyState: "open" | "closed" = "open";
  private input: Buffer[] = [];
  private inputBytes = 0;
  /** "startup" until the startup message has run (an SSL request before it is answered "N"). */
  private phase: "startup" | "ready" = "startup";
  private pumping = false;
  private terminateWhenDrained = false;

  constructor(
    private readonly db: PGlite,
    private readonly onClosed: () => void,
    /** Closed while an online backup waits for a quiet instant: the next statements outside a transaction wait. */
    private readonly gate?: PGliteGate,
  ) {
    super();
  }

  write(chunk: Uint8Array | string, callback?: (error?: Error | null) => void): boolean {
    if (this.readyState !== "open") {
      const error = new Error("write after the PGlite connection closed");
      if (callback) queueMicrotask(() => callback(error));
      return false;
    }
    const bytes =
      typeof chunk === "string"
        ? Buffer.from(chunk)
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.input.push(bytes);
    this.inputBytes += bytes.length;
    if (!this.pumping) void this.pump();
    if (callback) queueMicrotask(() => callback(null));
    return true;
  }

  end(chunk?: Uint8Array | string): this {
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    this.terminateWhenDrained = true;
    if (!this.pumping) void this.pump();
    return this;
  }

  destroy(): this {
    void this.close(false);
    return this;
  }

  pause(): this {
    return this;
  }

  resume(): this {
    return this;
  }

  /** Runs every complete message waiting, in order, one PGlite call per batch; a partial message waits. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      // Let the rest of this tick's writes join the batch (postgres.js writes a query's messages together).
      await Promise.resolve();
      while (this.readyState === "open") {
        const held = this.gate?.held;
        if (held && !this.db.isInTransaction()) {
          await held;
          continue;
        }
        const batch = this.takeComplete();
        if (!batch) break;
        if (batch.bytes.length > 0) {
          const reply = await this.db.runExclusive(() => this.run(batch.bytes));
          if (reply.length > 0 && this.readyState === "open")
            this.emit("data", Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength));
        }
        if (batch.terminate) {
          await this.close(false);
          return;
        }
      }
      if (this.terminateWhenDrained && this.inputBytes === 0) await this.close(false);
    } catch (error) {
      if (this.readyState === "open") this.emit("error", error);
      await this.close(true);
    } finally {
      this.pumping = false;
    }
  }

  private async run(bytes: Uint8Array): Promise<Uint8Array> {
    if (this.phase === "startup") {
      const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (view.length === 8 && view.readInt32BE(4) === SSL_REQUEST) return Buffer.from("N");
      this.phase = "ready";
    }
    // The stream form hands over the reply as it is written (a view into PGlite's memory, copied here). The plain
    // `execProtocolRaw` would also parse every reply message into a results list that nothing here reads and that
    // only `execProtocol` clears: it would grow with every row for the life of the connection.
    const chunks: Uint8Array[] = [];
    let length = 0;
    await this.db.execProtocolRawStream(bytes, {
      onRawData: (chunk) => {
        chunks.push(chunk.slice());
        length += chunk.length;
      },
    });
    return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks, length);
  }

  /**
   * Removes and returns the complete messages at the head of the input. The startup message (no type byte) and an
   * SSL request are always alone; a Terminate ends the batch and is not passed to PGlite.
   */
  private takeComplete(): { bytes: Uint8Array; terminate: boolean } | undefined {
    if (this.inputBytes === 0) return undefined;
    const all =
      this.input.length === 1 ? (this.input[0] as Buffer) : Buffer.concat(this.input, this.inputBytes);
    let end = 0;
    let terminate = false;
    if (this.phase === "startup") {
      // Length first, no type byte; the whole message, and nothing after it, in this call.
      if (all.length >= 4 && all.length >= all.readInt32BE(0)) end = all.readInt32BE(0);
    } else {
      while (end + 5 <= all.length) {
        if (all[end] === TERMINATE) {
          terminate = true;
          break;
        }
        const length = 1 + all.readInt32BE(end + 1);
        if (end + length > all.length) break;
        end += length;
      }
    }
    // After a Terminate nothing more is read.
    const rest = terminate ? all.subarray(all.length) : all.subarray(end);
    this.input = rest.length > 0 ? [rest] : [];
    this.inputBytes = rest.length;
    if (end === 0 && !terminate) return undefined;
    return { bytes: all.subarray(0, end), terminate };
  }

  private async close(hadError: boolean): Promise<void> {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    this.input = [];
    this.inputBytes = 0;
    // A client gone mid-transaction leaves nothing half done on the shared backend.
    try {
      if (this.phase === "ready" && this.db.isInTransaction()) await this.db.exec("ROLLBACK");
    } catch {
      // The database is closing as well.
    }
    this.onClosed();
    queueMicrotask(() => this.emit("close", hadError));
  }
}
