// HMAC-SHA256 request signing with WebCrypto (every runtime has it), verified in constant time.
import { toHex } from "./hex.ts";

const encoder = new TextEncoder();

async function key(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

/** A signer for one secret; the key is imported once. */
export function hmacSigner(secret: string) {
  const imported = key(secret);
  return {
    async sign(message: string): Promise<string> {
      return toHex(await crypto.subtle.sign("HMAC", await imported, encoder.encode(message)));
    },
    /** WebCrypto's verify compares in constant time; a malformed signature is just false. */
    async verify(message: string, signatureHex: string): Promise<boolean> {
      if (!/^[0-9a-f]{64}$/.test(signatureHex)) return false;
      const signature = new Uint8Array(
        signatureHex.match(/../g)?.map((byte) => Number.parseInt(byte, 16)) ?? [],
      );
      return crypto.subtle.verify("HMAC", await imported, signature, encoder.encode(message));
    },
  };
}

/**
 * Compares two strings in constant time for their length (for tokens and secrets): every UTF-16 code unit of the
 * longer is looked at, whatever differs first. Code units, not UTF-8 bytes: encoding turned each lone surrogate
 * into U+FFFD, so two different strings compared equal, and it cost two allocations per comparison.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const length = Math.max(a.length, b.length);
  // Past a string's end charCodeAt is NaN, which `| 0` makes 0: the loop's work depends on the lengths only.
  for (let i = 0; i < length; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
