// Opaque pagination cursors: a small JSON value as base64url, checked by a valibot schema when it comes back.
import * as v from "valibot";
import { EdgewiseError } from "../../../shared/errors/index.ts";

/** Longest cursor accepted, in characters: a cursor holds a key or two, never more. */
const maxCursorLength = 512;

export function encodeCursor(value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes a cursor this module encoded; anything else is `request.invalid` (400). */
export function decodeCursor<S extends v.GenericSchema>(cursor: string, schema: S): v.InferOutput<S> {
  const invalid = () =>
    new EdgewiseError("request.invalid", "cursor is invalid", {
      issues: [{ path: "cursor", message: "not a cursor from this API" }],
    });
  if (cursor.length > maxCursorLength || !/^[A-Za-z0-9_-]*$/.test(cursor)) throw invalid();
  let value: unknown;
  try {
    const binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw invalid();
  }
  const result = v.safeParse(schema, value);
  if (!result.success) throw invalid();
  return result.output;
}
