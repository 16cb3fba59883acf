// What a JSON body must be before it is read: not content-coded, UTF-8 (RFC 8259), with unique member names.
import type { Context } from "hono";
import { EdgewiseError } from "../../../shared/errors/index.ts";

/**
 * 415 with `Accept-Encoding: identity` for a body with any `Content-Encoding` but `identity`: no runtime decodes one
 * (see `refuseUnreadableBody`). Also asked of an inbound webhook before its signature, which is over bytes it would
 * misread.
 */
export function refuseContentCoding(c: Context): void {
  const coding = c.req.header("content-encoding")?.trim().toLowerCase();
  if (coding && coding !== "identity") {
    c.header("Accept-Encoding", "identity");
    throw new EdgewiseError(
      "request.unsupported_media_type",
      "send the body without a Content-Encoding: a compressed request body is not accepted",
    );
  }
}

/** The labels of UTF-8 in the WHATWG Encoding Standard (what `TextDecoder` takes): the charsets a JSON body may name. */
const utf8Labels: ReadonlySet<string> = new Set([
  "utf-8",
  "utf8",
  "unicode-1-1-utf-8",
  "unicode11utf8",
  "unicode20utf8",
  "x-unicode20utf8",
]);

/**
 * Refuses, with 415, a body the gateway would otherwise misread. None of Bun, Deno or workerd decodes a request's
 * `Content-Encoding`: a gzipped body was read as its compressed bytes (400 "not valid UTF-8", which sent the client
 * looking at its text), and one labelled `br` but sent plain was taken as if the label were not there. So any coding
 * but `identity` is refused, and `Accept-Encoding: identity` says what is taken (RFC 9110 §15.5.16). Likewise a
 * `charset` other than UTF-8: the bytes were read as UTF-8 whatever the label said, so a Latin-1 body whose bytes
 * happen to be valid UTF-8 (`Ã©`, C3 A9) reached the routes as other text (`é`).
 */
export function refuseUnreadableBody(c: Context, contentType: string | undefined): void {
  refuseContentCoding(c);
  const charset = charsetOf(contentType);
  if (charset !== undefined && !utf8Labels.has(charset)) {
    throw new EdgewiseError(
      "request.unsupported_media_type",
      "send the body as UTF-8 JSON (RFC 8259): its Content-Type names another charset",
    );
  }
}

/** The `charset` parameter of a media type, unquoted and lowercase; undefined when it has none. */
function charsetOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  for (const parameter of contentType.split(";").slice(1)) {
    const equals = parameter.indexOf("=");
    if (equals === -1 || parameter.slice(0, equals).trim().toLowerCase() !== "charset") continue;
    return parameter
      .slice(equals + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase();
  }
  return undefined;
}

/**
 * The dotted path (as the validator names fields: `items.0.sku`) of the first member whose name its object already
 * has, in JSON `text`; undefined when there is none. `JSON.parse` keeps the last of the two silently, where other
 * parsers keep the first (RFC 8259 §4 calls the outcome unpredictable; I-JSON, RFC 7493, forbids it): a proxy or a
 * client-side check that read `{"by":1,"by":500}` as 1 let 500 through. Text that is not JSON may give any answer
 * but never throws: the caller confirms with a parse before it names one.
 */
export function duplicateMemberAt(text: string): string | undefined {
  const path: string[] = [];
  // One frame per open object or array: an object's names so far (and whether its current one is on `path`), an
  // array's current index (always on `path`).
  const frames: Array<{ names: Set<string>; named: boolean } | { index: number }> = [];
  let expectName = false;
  for (let at = 0; at < text.length; at++) {
    const char = text.charCodeAt(at);
    if (char === 0x22) {
      const end = stringEnd(text, at);
      if (end === -1) return undefined;
      const frame = frames.at(-1);
      if (expectName && frame && "names" in frame) {
        const name = memberName(text.slice(at + 1, end));
        // An escape JSON does not have (`"a\x"`): not JSON, which is the validator's to answer.
        if (name === undefined) return undefined;
        if (frame.names.has(name)) return [...path, name].join(".");
        frame.names.add(name);
        path.push(name);
        frame.named = true;
        expectName = false;
      }
      at = end;
    } else if (char === 0x7b) {
      frames.push({ names: new Set(), named: false });
      expectName = true;
    } else if (char === 0x5b) {
      frames.push({ index: 0 });
      path.push("0");
    } else if (char === 0x2c) {
      const frame = frames.at(-1);
      if (frame && "names" in frame) {
        if (frame.named) path.pop();
        frame.named = false;
        expectName = true;
      } else if (frame) {
        frame.index++;
        path[path.length - 1] = String(frame.index);
      }
    } else if (char === 0x7d || char === 0x5d) {
      const frame = frames.pop();
      if (frame && (!("names" in frame) || frame.named)) path.pop();
      expectName = false;
    }
  }
  return undefined;
}

/** A member name's text, its escapes read; undefined where it is no JSON string. */
function memberName(raw: string): string | undefined {
  if (!raw.includes("\\")) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return undefined;
  }
}

/** The index of the quote that closes the string opening at `start`, or -1. */
function stringEnd(text: string, start: number): number {
  let at = start + 1;
  for (;;) {
    const quote = text.indexOf('"', at);
    if (quote === -1) return -1;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
    at = quote + 1;
  }
}
