// Issues HS256 JWTs that the auth middleware accepts: for tests and the demo admin token printed at start.
import { SignJWT } from "jose";

export interface TokenRequest {
  sub: string;
  scopes: readonly string[];
  ttlSeconds: number;
  /** The same key the gateway verifies with (JWT_SECRET). */
  secret: string | Uint8Array;
  issuer?: string | undefined;
  audience?: string | string[] | undefined;
  /** Issue time in ms since the epoch; default now. */
  now?: number;
}

export async function issueToken(request: TokenRequest): Promise<string> {
  const key = typeof request.secret === "string" ? new TextEncoder().encode(request.secret) : request.secret;
  const issuedAt = Math.floor((request.now ?? Date.now()) / 1000);
  const jwt = new SignJWT({ scope: request.scopes.join(" ") })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(request.sub)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + request.ttlSeconds);
  if (request.issuer !== undefined) jwt.setIssuer(request.issuer);
  if (request.audience !== undefined) jwt.setAudience(request.audience);
  return await jwt.sign(key);
}
