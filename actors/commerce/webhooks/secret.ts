// Webhook signing secrets in the Standard Webhooks form: `whsec_` + base64 of random bytes.
import { EdgewiseError } from "../../../shared/errors/index.ts";

export const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 32;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Standard base64 to bytes; undefined when the text is not base64. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!base64Pattern.test(text)) return undefined;
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

/** A fresh secret: 32 random bytes (the spec asks for 24 to 64). */
export function generateSecret(): string {
  return SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** The HMAC key bytes of a `whsec_…` secret; throws `config.invalid` for anything else. */
export function decodeSecret(secret: string): Uint8Array<ArrayBuffer> {
  const key = secret.startsWith(SECRET_PREFIX) ? fromBase64(secret.slice(SECRET_PREFIX.length)) : undefined;
  if (!key || key.length === 0) {
    throw new EdgewiseError("config.invalid", "a webhook secret is written whsec_<base64>");
  }
  return key;
}

export function isSecret(text: string): boolean {
  try {
    decodeSecret(text);
    return true;
  } catch {
    return false;
  }
}
