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

/** Compares two strings in constant time for their length (for tokens and secrets). */
export function timingSafeEqual(a: string, b: string): boolean {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  let diff = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return diff === 0;
}
