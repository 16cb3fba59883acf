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
 * Compares what a caller `given` with the `secret` it must match (a token, a signature, a hash) in time that depends
 * on `given`'s length alone: one step per UTF-16 code unit of `given`, each against the secret's code unit at that
 * place (wrapping round a shorter secret), whatever differs first. It looped over the longer of the two, so a caller
 * sending ever longer guesses found the secret's length where the time started to grow (METRICS_TOKEN's, the
 * broker's token's). Code units, not UTF-8 bytes: encoding turned each lone surrogate into U+FFFD, so two different
 * strings compared equal, and it cost two allocations per comparison. Argument order matters: the secret second.
 */
export function timingSafeEqual(given: string, secret: string): boolean {
  let diff = given.length ^ secret.length;
  const wrap = secret.length;
  // With an empty secret `i % 0` is NaN and charCodeAt(NaN) of "" is NaN, which `| 0` makes 0: no branch on it.
  for (let i = 0; i < given.length; i++) diff |= given.charCodeAt(i) ^ (secret.charCodeAt(i % wrap) | 0);
  return diff === 0;
}
