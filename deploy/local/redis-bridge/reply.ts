// Redis replies as Upstash's REST API renders them: JSON, with strings optionally base64 (`Upstash-Encoding`).
import { ErrorReply, type Reply, SimpleString } from "./resp.ts";

const utf8 = new TextDecoder("utf-8"); // not fatal: invalid bytes become U+FFFD, as Upstash documents

/** `{"result": …}` or `{"error": …}`, one per command (also the items of /pipeline and /multi-exec). */
export type Outcome = { result: unknown } | { error: string };

/**
 * With base64 on, every string is base64 except a top-level `+OK` status reply: that is the one exception in
 * Upstash's docs, and @upstash/redis's decoder leaves exactly that one plain. Inside arrays the SDK decodes every
 * string, so an `OK` there is encoded too. Integers stay numbers (past 2^53 they lose precision, as in any
 * JSON client); nil is null.
 */
export function outcome(reply: Reply, base64: boolean): Outcome {
  if (reply instanceof ErrorReply) return { error: reply.message };
  const nested = firstError(reply);
  // An error inside an array (a Lua table holding redis.error_reply) fails the command as a whole.
  if (nested) return { error: nested.message };
  return { result: render(reply, base64, true) };
}

function render(reply: Reply, base64: boolean, top: boolean): unknown {
  if (reply === null || typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map((item) => render(item, base64, false));
  if (reply instanceof SimpleString) {
    if (!base64 || (top && reply.text === "OK")) return reply.text;
    return Buffer.from(reply.text, "utf8").toString("base64");
  }
  if (reply instanceof Uint8Array) {
    return base64
      ? Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString("base64")
      : utf8.decode(reply);
  }
  return null;
}

function firstError(reply: Reply): ErrorReply | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (const item of reply) {
    const found = item instanceof ErrorReply ? item : firstError(item);
    if (found) return found;
  }
  return undefined;
}
