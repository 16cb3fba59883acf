// Actor identity: `type/key`, with the validation every host applies before touching storage.
import { EdgewiseError } from "../../shared/errors/index.ts";

export interface ActorAddress {
  type: string;
  key: string;
}

const typePattern = /^[a-z][a-z0-9-]{0,63}$/;
/**
 * URL-safe: RFC 3986 unreserved characters only, so a key is the same in a path, a header and a SQL row. Not `.` or
 * `..`: every URL parser drops those as path segments (`%2e` too), so no delivery could reach such an actor.
 */
const keyPattern = /^(?!\.\.?$)[A-Za-z0-9._~-]{1,256}$/;

export function isValidActorType(type: string): boolean {
  return typePattern.test(type);
}

export function isValidActorKey(key: unknown): key is string {
  return typeof key === "string" && keyPattern.test(key);
}

/** What a valid key is, in the words every refusal of one uses. */
export const actorKeyRule =
  "1-256 URL-safe characters (letters, digits, '.', '_', '~', '-'), and not '.' or '..'";

/** What a valid actor type is, in words. */
export const actorTypeRule = "a lowercase letter, then up to 63 lowercase letters, digits or '-'";

export function assertValidKey(key: unknown): asserts key is string {
  if (!isValidActorKey(key))
    throw new EdgewiseError("actor.invalid_key", `actor key must be ${actorKeyRule}`);
}

export function formatAddress(address: ActorAddress): string {
  return `${address.type}/${address.key}`;
}

export function parseAddress(text: string): ActorAddress {
  const slash = text.indexOf("/");
  if (slash < 1) throw new EdgewiseError("actor.invalid_key", "an actor address is written `type/key`");
  const address = { type: text.slice(0, slash), key: text.slice(slash + 1) };
  assertValidKey(address.key);
  return address;
}

export function actorSource(address: ActorAddress): string {
  return `edgewise://actor/${address.type}/${address.key}`;
}
