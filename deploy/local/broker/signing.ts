// Upstash-Signature: the HS256 JWT QStash puts on every delivery, as the SDK's Receiver verifies it.
import { Buffer } from "node:buffer";
import { createHash, createHmac, createSecretKey, randomUUID } from "node:crypto";
import { base64url } from "jose";

export type Signer = (url: string, body: Uint8Array) => Promise<string>;

/** base64url(SHA-256(body)), the `body` claim. */
export async function bodyHash(body: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>);
  return base64url.encode(new Uint8Array(digest));
}

/**
 * A signer for one signing key. Claims: iss "Upstash", sub = destination URL, iat = now, nbf = 0, exp = now + 5 min,
 * a unique jti, and body = base64url(SHA-256(body)). The Receiver tries the current key, then the next one.
 * nbf is 0 as in QStash (its changelog: nbf = now made receivers whose clocks were a little behind refuse
 * deliveries; jose checks it with no tolerance by default). exp still bounds a token's life.
 * Signed with node:crypto's HMAC, synchronously and with the key prepared once: jose's SignJWT cost about a
 * fifth of the broker's CPU per delivery. The token is the same compact HS256 JWS jose would produce. The claims
 * are base64url-encoded by `Buffer` (3.5 µs a delivery less than jose's `base64url.encode` on Bun).
 */
export function createSigner(signingKey: string): Signer {
  const header = encodeJson({ alg: "HS256", typ: "JWT" });
  const key = createSecretKey(Buffer.from(signingKey, "utf8"));
  return async (url, body) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      body: createHash("sha256").update(body).digest("base64url"),
      iss: "Upstash",
      sub: url,
      iat: now,
      nbf: 0,
      exp: now + 300,
      jti: `jwt_${randomUUID().replaceAll("-", "")}`,
    };
    const signingInput = `${header}.${encodeJson(claims)}`;
    return `${signingInput}.${createHmac("sha256", key).update(signingInput).digest("base64url")}`;
  };
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}
