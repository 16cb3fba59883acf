// The console's live event stream, `/_console/events/stream`: SSE from one shared tail of the activity log.
import type { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../env.ts";
import { validate } from "../middleware/validation/index.ts";
import type { ConsoleAccess } from "./access.tsx";
import { isPosition, LiveTail } from "./live.ts";
import { pageChecked } from "./page.tsx";
import type { ConsoleOptions } from "./types.ts";

const positionRule = "a position in the activity log (a decimal number below 2^63)";

/** The page's first connection names the newest row it rendered: `?after=`, a position in the log. */
const StreamQuery = v.strictObject({
  after: v.optional(v.pipe(v.string(), v.check(isPosition, `must be ${positionRule}`))),
});

/** The node's one tail of the activity log, closed when the node stops; none without a log or a live stream. */
export function liveTail(options: ConsoleOptions): LiveTail | undefined {
  const live = options.live === false ? undefined : options.live;
  const tail = options.events && options.live !== false ? new LiveTail(options.events, live) : undefined;
  if (tail && options.signal) {
    if (options.signal.aborted) tail.close();
    else options.signal.addEventListener("abort", () => tail.close(), { once: true });
  }
  return tail;
}

export function liveStreamRoutes(
  app: Hono<GatewayEnv>,
  options: ConsoleOptions,
  access: ConsoleAccess,
  tail: LiveTail | undefined,
): void {
  const live = options.live === false ? undefined : options.live;
  const maxStreams = live?.maxStreams ?? 32;
  const heartbeatMs = live?.heartbeatMs ?? 15_000;
  /** Streams admitted but still waiting for the end of the log (they count towards the limit). */
  let opening = 0;

  // The live event stream: Server-Sent Events, one `activity` frame per new entry of the log, its position as
  // the frame's id. EventSource sends the last id back as Last-Event-ID when it reconnects, and the stream resumes
  // right after it; the page's first connection names the newest row it rendered (`?after=`).
  const checkedQuery = pageChecked(validate("query", StreamQuery), "Invalid stream position");
  app.get("/_console/events/stream", checkedQuery, async (c) => {
    const session = access.sessionOf(c);
    if (!tail) throw new EdgewiseError("not_found", "no live event stream here");
    // The header, which EventSource sends when it reconnects, is checked here: the validator reads no headers.
    const after = c.req.header("last-event-id") ?? c.req.valid("query").after;
    if (after !== undefined && !isPosition(after)) {
      throw new EdgewiseError("request.invalid", `Last-Event-ID must be ${positionRule}`);
    }
    if (tail.closed) throw new EdgewiseError("unavailable", "the node is shutting down");
    if (tail.size + opening >= maxStreams) {
      throw new EdgewiseError("unavailable", `at most ${maxStreams} console event streams are open at once`, {
        meta: { retryAfterSeconds: 10 },
      });
    }
    let subscription: Awaited<ReturnType<LiveTail["subscribe"]>>;
    opening++;
    try {
      subscription = await tail.subscribe(after);
    } catch (error) {
      throw new EdgewiseError("unavailable", "the activity log cannot be read", { cause: error });
    } finally {
      opening--;
    }
    // A session's stream ends with the session (sign-out, expiry), like its pages; a Bearer caller's with the request.
    let expiry: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      if (expiry !== undefined) clearTimeout(expiry);
      session.ended?.removeEventListener("abort", end);
      subscription.close();
    };
    c.req.raw.signal?.addEventListener("abort", end, { once: true });
    if (session.ended?.aborted) end();
    session.ended?.addEventListener("abort", end, { once: true });
    if (session.expiresAt !== undefined) {
      expiry = setTimeout(end, Math.min(Math.max(session.expiresAt - Date.now(), 0), 2 ** 31 - 1));
      (expiry as { unref?: () => void }).unref?.();
    }
    c.header("X-Accel-Buffering", "no");
    const response = streamSSE(c, async (stream) => {
      stream.onAbort(end);
      try {
        // How long EventSource waits before reconnecting; it also gets the headers and a first byte out at once.
        await stream.write("retry: 2000\n: live\n\n");
        for (;;) {
          const next = await subscription.next(heartbeatMs);
          if ("closed" in next || stream.aborted) return;
          if ("idle" in next) {
            await stream.write(": heartbeat\n\n");
            continue;
          }
          for (const entry of next.entries) {
            // JSON, not HTML: the page puts each field in with textContent.
            await stream.writeSSE({
              event: "activity",
              id: entry.position,
              data: JSON.stringify(entry.envelope),
            });
          }
        }
      } finally {
        end();
      }
    });
    // The events are data, as on the pages: never stored (streamSSE says `no-cache`, which lets a copy be kept).
    response.headers.set("Cache-Control", "no-store");
    return response;
  });
}
