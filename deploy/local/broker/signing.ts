// Upstash-Signature: the HS256 JWT QStash puts on every delivery, as the SDK's Receiver verifies it.
import { base64url, SignJWT } from "jose";

export type Signer = (url: string, body: Uint8Array) => Promise<string>;

const encoder = new TextEncoder();

/** base64url(SHA-256(body)), the `body` claim. */
export async function bodyHash(body: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>);
  return base64url.encode(new Uint8Array(digest));
}

/**
 * A signer for one signing key. Claims: iss "Upstash", sub = destination URL, iat/nbf = now, exp = now + 5 min,
 * a unique jti, and body = base64url(SHA-256(body)). The Receiver tries the current key, then the next one.
 */
export function createSigner(signingKey: string): Signer {
  // Imported once: jose would import a raw Uint8Array key again on every signature.
  const key = crypto.subtle.importKey(
    "raw",
    encoder.encode(signingKey),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return async (url, body) => {
    const now = Math.floor(Date.now() / 1000);
    return await new SignJWT({ body: await bodyHash(body) })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer("Upstash")
      .setSubject(url)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 300)
      .setJti(`jwt_${crypto.randomUUID().replaceAll("-", "")}`)
      .sign(await key);
  };
}
