// Standard Webhooks signatures: HMAC-SHA256 over `id.timestamp.body`, sent as `webhook-signature: v1,<base64>`.
import { timingSafeEqual } from "../../../shared/crypto/hmac.ts";
import { decodeSecret, toBase64 } from "./secret.ts";

/** Accepted clock difference, either way, between the signer's timestamp and ours (the spec's 5 minutes). */
export const TOLERANCE_SECONDS = 5 * 60;

export type HeadersLike = Headers | Readonly<Record<string, string | undefined>>;

export interface SignInput {
  secret: string;
  /** `webhook-id`: the message id, the same on every retry. */
  id: string;
  /** `webhook-timestamp`: seconds since the epoch. */
  timestamp: number;
  body: string;
}

const encoder = new TextEncoder();

async function hmac(secret: string, content: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    decodeSecret(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(content))));
}

/** The `webhook-signature` value for one secret: `v1,<base64>`. */
export async function sign(input: SignInput): Promise<string> {
  return `v1,${await hmac(input.secret, `${input.id}.${input.timestamp}.${input.body}`)}`;
}

/**
 * The three Standard Webhooks headers for a body, stamped `now` (epoch ms). With several secrets (a rotation's
 * overlap), `webhook-signature` carries one signature per secret, space-separated, as the spec allows: a receiver
 * that knows either secret verifies it.
 */
export async function signedHeaders(input: {
  secret: string | readonly string[];
  id: string;
  body: string;
  now: number;
}): Promise<Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string>> {
  const timestamp = Math.floor(input.now / 1000);
  const secrets = typeof input.secret === "string" ? [input.secret] : input.secret;
  const signatures = await Promise.all(
    secrets.map((secret) => sign({ secret, id: input.id, timestamp, body: input.body })),
  );
  return {
    "webhook-id": input.id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signatures.join(" "),
  };
}

export type SignatureFailure =
  | "missing_headers"
  | "invalid_id"
  | "invalid_timestamp"
  | "stale"
  | "future"
  | "bad_signature";

/**
 * What a `webhook-id` may be: 1-256 visible ASCII characters. Every sender's ids are short tokens (`msg_…`); a
 * longer one could not be remembered for replay protection (a Postgres index entry has a size limit).
 */
export const webhookIdPattern = /^[\x21-\x7e]{1,256}$/;

export type SignatureCheck =
  | { ok: true; id: string; timestamp: number }
  | { ok: false; reason: SignatureFailure; id?: string; timestamp?: number };

export interface VerifyInput {
  /** One secret, or several while one is being rotated: any of them may have signed. */
  secrets: string | readonly string[];
  headers: HeadersLike;
  body: string;
  /** Epoch ms. */
  now: number;
  toleranceSeconds?: number;
}

export function header(headers: HeadersLike, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

/**
 * Checks a Standard Webhooks request. `webhook-signature` may carry several space-separated signatures
 * (`v1,…`); one matching `v1` is enough. Other versions (`v1a`, asymmetric) are skipped, not failed.
 */
export async function verify(input: VerifyInput): Promise<SignatureCheck> {
  const id = header(input.headers, "webhook-id");
  const stamp = header(input.headers, "webhook-timestamp");
  const signatures = header(input.headers, "webhook-signature");
  if (!id || !stamp || !signatures) return { ok: false, reason: "missing_headers", ...(id ? { id } : {}) };
  // Checked before anything is done with it: a refused id is not echoed into the security event either.
  if (!webhookIdPattern.test(id)) return { ok: false, reason: "invalid_id" };
  if (!/^\d{1,12}$/.test(stamp)) return { ok: false, reason: "invalid_timestamp", id };
  const timestamp = Number(stamp);
  const skew = Math.floor(input.now / 1000) - timestamp;
  const tolerance = input.toleranceSeconds ?? TOLERANCE_SECONDS;
  if (skew > tolerance) return { ok: false, reason: "stale", id, timestamp };
  if (-skew > tolerance) return { ok: false, reason: "future", id, timestamp };

  const offered = signatures
    .split(" ")
    .filter((entry) => entry.startsWith("v1,"))
    .map((entry) => entry.slice(3));
  const secrets = typeof input.secrets === "string" ? [input.secrets] : input.secrets;
  let matched = false;
  for (const secret of secrets) {
    const expected = (await sign({ secret, id, timestamp, body: input.body })).slice(3);
    // Every candidate is compared, so the time taken does not tell which one (if any) matched.
    for (const candidate of offered) matched = timingSafeEqual(candidate, expected) || matched;
  }
  return matched ? { ok: true, id, timestamp } : { ok: false, reason: "bad_signature", id, timestamp };
}
