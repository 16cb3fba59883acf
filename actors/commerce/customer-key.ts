// A customer's actor key (loyalty, billing): the customerId itself when it is a plain key, else a reversible encoding.
import * as v from "valibot";
import { noControlCharacters } from "../../shared/text/index.ts";

/**
 * Why: a customerId is the caller's JWT `sub` for a non-admin, and identity providers write subs such as
 * `auth0|5f1c…` or `ada@example.com`, which actor keys (URL-safe characters only, on every host) cannot carry.
 * A plain key stays itself, so the keys of existing customers do not change; anything else is `~u.` and the
 * base64url of its UTF-8, which is URL-safe. No plain key starts with `~u.` (such an id is encoded too), so two
 * customers never share a key.
 */
const plainKey = /^(?!\.\.?$)(?!~u\.)[A-Za-z0-9._~-]{1,256}$/;
const encodedPrefix = "~u.";
const maxKeyLength = 256;

export function customerKey(customerId: string): string {
  if (plainKey.test(customerId)) return customerId;
  let binary = "";
  for (const byte of new TextEncoder().encode(customerId)) binary += String.fromCharCode(byte);
  return encodedPrefix + btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The customerId a key was made from (`customerKey`'s inverse). */
export function customerIdOfKey(key: string): string {
  if (!key.startsWith(encodedPrefix)) return key;
  const base64 = key.slice(encodedPrefix.length).replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="));
  return new TextDecoder().decode(Uint8Array.from(binary, (char) => char.charCodeAt(0)));
}

/** Billing's own accounts (`system:funding`, `system:revenue`) share the accounts table: no customer is named so. */
export const reservedCustomerPrefix = "system:";

/**
 * A customerId: any text of 1-128 characters without control characters (a JWT `sub` as issued), short enough
 * that its key fits an actor key (at most 189 bytes of UTF-8 once it needs encoding), and not `system:…`.
 */
export const CustomerId = v.pipe(
  v.string(),
  v.minLength(1, "must not be empty"),
  v.maxLength(128, "must be at most 128 characters"),
  noControlCharacters,
  v.check(
    (customerId) => customerKey(customerId).length <= maxKeyLength,
    "is too long: at most 189 bytes as UTF-8 unless it is URL-safe",
  ),
  v.check((customerId) => !customerId.startsWith(reservedCustomerPrefix), "must not start with 'system:'"),
);
