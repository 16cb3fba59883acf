// Hex encodings every runtime can make (WebCrypto): of bytes, of random bytes, of a SHA-256 digest.

/** Lower-case hex of `bytes`. */
export const toHex = (bytes: ArrayBuffer | Uint8Array): string =>
  [...(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes))]
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("");

/** `bytes` random bytes from the runtime's CSPRNG, as hex (twice as many characters). */
export const randomHex = (bytes: number): string => toHex(crypto.getRandomValues(new Uint8Array(bytes)));

/** SHA-256 of `text` (UTF-8), as hex. */
export async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}
