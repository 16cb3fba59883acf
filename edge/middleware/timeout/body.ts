// The request body read under the request's deadline: a body that has not arrived by then fails with `timeout`.
import { EdgewiseError } from "../../../shared/errors/index.ts";

export interface BoundBody {
  /** The request, with its body read through the bound. */
  request: Request;
  /** True once the deadline cut the body off: its rest may still come, so the connection serves nothing after. */
  readonly cut: boolean;
  /** Stops watching the deadline, once the request is answered. */
  release(): void;
}

/**
 * Bun's and Deno's servers give a request's body no time limit: a client that declares 1,000 bytes and sends one
 * every few seconds kept its request, and its connection, for good, whatever REQUEST_TIMEOUT said, since nothing
 * that waits for the body observes the deadline's signal. A read already waiting on the runtime's stream cannot be
 * ended from outside either (the stream is locked to its reader), so the body is read through a stream of our own:
 * when `deadline` aborts before the body's end, a read fails with `timeout` (504) and the runtime's stream is
 * cancelled. A runtime stream that fails (the client hung up mid-body) fails a read with `request.invalid` (400),
 * the client's doing, not a server failure to log as one.
 */
export function boundBody(request: Request, deadline: AbortSignal, ms: number): BoundBody | undefined {
  const source = request.body;
  if (!source) return undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  let ended = false;
  let cut = false;
  const release = () => deadline.removeEventListener("abort", onDeadline);
  const end = () => {
    ended = true;
    release();
  };
  function onDeadline() {
    if (ended) return;
    end();
    cut = true;
    controller?.error(new EdgewiseError("timeout", `the request's body did not arrive within ${ms} ms`));
    // Settles a read still waiting on the runtime (done), and tells the runtime nothing more will be read.
    void (reader ?? source)?.cancel().catch(() => {});
  }
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      async pull(c) {
        reader ??= source.getReader();
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch {
          if (ended) return;
          end();
          c.error(
            new EdgewiseError(
              "request.invalid",
              "the request's body ended before it was complete (the connection closed or the body was malformed)",
            ),
          );
          return;
        }
        if (ended) return;
        if (chunk.done) {
          end();
          c.close();
        } else c.enqueue(chunk.value);
      },
      cancel(reason) {
        end();
        return (reader ?? source).cancel(reason);
      },
    },
    // Nothing is read ahead of the reader: a body nobody reads stays in the runtime, unread, as before.
    { highWaterMark: 0 },
  );
  if (deadline.aborted) onDeadline();
  else deadline.addEventListener("abort", onDeadline, { once: true });
  return {
    request: new Request(request, { body, duplex: "half" } as RequestInit),
    get cut() {
      return cut;
    },
    release,
  };
}
