// API keys: the `ew_<id>_<secret>` format, issuing a key, and checking one against its stored hash.
import { timingSafeEqual } from "../../../shared/crypto/hmac.ts";
import type { ApiKeyRecord, ApiKeyRecorder, ApiKeyStore } from "./api-key-store.ts";
import type { Principal } from "./principal.ts";
import { scopeSet } from "./scope-set.ts";
import { sha256Hex } from "../../../shared/crypto/hex.ts";

/** Crockford base32, lower case: 32 symbols, so `byte & 31` picks one without bias. */
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";
const idLength = 16; // 80 bits: an id is a lookup key, not a secret
const secretBytes = 32; // 256 bits, 43 base64url characters
const idPattern = /^[0-9a-hjkmnp-tv-z]{16}$/;
const keyPattern = /^ew_([0-9a-hjkmnp-tv-z]{16})_([A-Za-z0-9_-]{43})$/;

export interface ParsedApiKey {
  id: string;
  secret: string;
}

/** Validates the shape only; undefined for anything that cannot be one of our keys (no store lookup needed). */
export function parseApiKey(key: string): ParsedApiKey | undefined {
  const match = keyPattern.exec(key);
  return match ? { id: match[1] as string, secret: match[2] as string } : undefined;
}

export function isApiKeyId(id: string): boolean {
  return idPattern.test(id);
}

/**
 * SHA-256, hex. A fast unsalted hash is right here, unlike for passwords: the secret is 256 random bits, so
 * there is nothing to guess or precompute, and a slow KDF would only cost CPU on every request.
 */
export async function hashSecret(secret: string): Promise<string> {
  return sha256Hex(secret);
}

export interface GeneratedApiKey {
  id: string;
  /** The whole key, shown to the caller once and never stored. */
  key: string;
  secretHash: string;
}

export async function generateApiKey(): Promise<GeneratedApiKey> {
  const idBytes = crypto.getRandomValues(new Uint8Array(idLength));
  const id = [...idBytes].map((byte) => idAlphabet[byte & 31]).join("");
  const secret = base64url(crypto.getRandomValues(new Uint8Array(secretBytes)));
  return { id, key: `ew_${id}_${secret}`, secretHash: await hashSecret(secret) };
}

export interface ApiKeyGrant {
  sub: string;
  scopes: readonly string[];
  name?: string | undefined;
}

/**
 * Creates a key in the store and returns it in full: the only time the secret exists outside the caller. With
 * `record`, in the same transaction as the key's record (`ApiKeyRecorder`): if that fails, no key exists and none
 * is returned; nor once `signal` (the request's) has fired before COMMIT (`ApiKeyStore.create`).
 */
export async function issueApiKey(
  store: ApiKeyStore,
  grant: ApiKeyGrant,
  record?: ApiKeyRecorder,
  signal?: AbortSignal,
): Promise<{ id: string; key: string }> {
  const { id, key, secretHash } = await generateApiKey();
  const created = { id, secretHash, sub: grant.sub, scopes: [...grant.scopes], name: grant.name ?? null };
  await store.create(created, record, signal);
  return { id, key };
}

/** The port the auth middleware calls for `X-API-Key`: a principal, or undefined when the key is no good. */
export interface ApiKeyVerifier {
  verify(key: string): Promise<Principal | undefined>;
}

/** The decision, given the stored record (or its absence) for the key's id. */
export async function principalForKey(
  parsed: ParsedApiKey,
  record: ApiKeyRecord | undefined,
): Promise<Principal | undefined> {
  if (!record || record.revokedAt !== null) return undefined;
  if (!timingSafeEqual(await hashSecret(parsed.secret), record.secretHash)) return undefined;
  return { sub: record.sub, scopes: scopeSet(record.scopes), via: "api-key", apiKeyId: record.id };
}

/** Looks every key up in the store: revocation is immediate, at one query per request. */
export function storeApiKeyVerifier(store: Pick<ApiKeyStore, "find">): ApiKeyVerifier {
  return {
    async verify(key) {
      const parsed = parseApiKey(key);
      return parsed ? principalForKey(parsed, await store.find(parsed.id)) : undefined;
    },
  };
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
