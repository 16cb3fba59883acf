// Redaction: what a log record may never carry (credentials by key, token-shaped strings by value).

/** The mask left where a secret was. */
export const redacted = "[redacted]";

/**
 * Keys whose values are secrets whatever they hold: headers (`authorization`, `cookie`, `x-api-key`,
 * `upstash-signature`, `webhook-signature`) and the names configuration and code give them.
 */
const sensitiveKey =
  /authorization|cookie|token|secret|passw(?:or)?d|api[-_]?key|signature|credential|private[-_]?key/i;

/**
 * Names of a key's id (`apiKeyId`, `api_key_id`, `privateKeyId`, `apiKeyIds`): an id names a key without granting
 * anything (the admin audit's actor and target carry one), so it stays readable though its name says `api-key`.
 * Its value is still masked by shape: a whole key put there loses its secret (`ew_<id>_[redacted]`).
 */
const keyIdKey = /(?:api|private)[-_]?key[-_]?ids?$/i;

/** Whether a key's value is a secret: its name says so, the name of a key's id aside (`secretApiKeyId` still is). */
export const isSensitiveKey = (key: string): boolean => sensitiveKey.test(key.replace(keyIdKey, ""));

/**
 * Token shapes, one pass over each string. Order matters: the first alternative that matches at a position wins.
 * - `Bearer …` / `Basic …` credentials as a header carries them (any case, as the auth middleware reads them);
 * - JWTs and JWEs (base64url JSON header `eyJ…`, then two to four dot-separated segments);
 * - any other long triple of base64url segments (an opaque signed token);
 * - base64 JSON blobs (`eyJ…`, a QStash token is one);
 * - Standard Webhooks secrets and signatures (`whsec_…`, `v1,…`), QStash signing keys (`sig_…`);
 * - Edgewise API keys (`ew_<id>_<secret>`: the id stays, it names the key without granting anything);
 * - long mixed-case alphanumeric runs (Upstash REST tokens, most vendors' keys);
 * - the password in a URL's userinfo (`postgres://user:[redacted]@host`: the user and host stay). Userinfo lives in
 *   the authority, before the first `/`, `?` or `#`, and ends at its last `@`, as URL() and postgres.js read it; an
 *   `@` further on (`https://h:8443/x?email=a@b.com`) is not one. The exception is an authority that is not a
 *   host and port (`user:c2Vj/…@db`: `c2Vj` is no port): a password with an unescaped `/`, `?` or `#` (base64 has
 *   `/`) is what makes a URL fail to parse, and a parser's error quotes that URL whole (Deno's `Invalid URL: '…'`),
 *   so the mask then runs to the run's last `@`. What cannot be told apart stays readable: a password of 1 to 5
 *   digits before its first unescaped `/`, `?` or `#` reads as a port, and one with both an unescaped `@` and one of
 *   those is masked to the `@` only. That search stops at the next `://`, so each URL is scanned once: to the run's
 *   end, a run of many (`a://b:a://b:…`) took time quadratic in its length.
 * The unanchored shapes start only where a run starts (the lookbehinds), so a long run that fails is scanned
 * once, not once per position.
 */
const tokenShapes = new RegExp(
  [
    String.raw`\b([Bb][Ee][Aa][Rr][Ee][Rr]|[Bb][Aa][Ss][Ii][Cc])\s+[^\s"',;]{8,}`,
    String.raw`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){1,3}`,
    String.raw`(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`,
    "eyJ[A-Za-z0-9+/_-]{16,}={0,2}",
    "whsec_[A-Za-z0-9+/=_-]{8,}",
    String.raw`\bv1[,=][A-Za-z0-9+/]{20,}={0,2}`,
    String.raw`\bsig_[A-Za-z0-9_]{8,}`,
    String.raw`\b(ew_[0-9a-z]{16}_)[A-Za-z0-9_-]{20,}`,
    "(?<![A-Za-z0-9+=_-])(?=[A-Za-z0-9+=_-]*[0-9])(?=[A-Za-z0-9+=_-]*[a-z])(?=[A-Za-z0-9+=_-]*[A-Z])[A-Za-z0-9+=_-]{40,}",
    String.raw`(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>/?#@:[]*:)` +
      // In the authority, to its last `@`; else, unless a port follows the `:`, to the run's last `@`.
      String.raw`(?:[^\s"'<>/?#]*@|(?!\d{1,5}(?![^\s"'<>/?#]))(?:[^\s"'<>:]|:(?!//))*@)`,
  ].join("|"),
  "g",
);

/** Strings shorter than this cannot hold any shape above, so most values skip the scan. */
const shortest = 12;

/** Masks every token-shaped run in a string; the rest of the text stays readable. */
export function maskSecrets(text: string): string {
  if (text.length < shortest) return text;
  return text.replace(
    tokenShapes,
    (_match, scheme: string | undefined, keyId: string | undefined, userinfo: string | undefined) =>
      scheme !== undefined
        ? `${scheme} ${redacted}`
        : keyId !== undefined
          ? `${keyId}${redacted}`
          : userinfo !== undefined
            ? `${userinfo}${redacted}@`
            : redacted,
  );
}

const maxDepth = 8;
const maxArrayItems = 100;
const maxStringLength = 8_192;

/**
 * A JSON-safe copy of a value with secrets removed: sensitive keys become "[redacted]" at any depth, strings are
 * masked, errors become their name, message and cause chain (never their other properties), and cycles, depth
 * and long strings are cut.
 */
export function redact(value: unknown): unknown {
  return walk(value, 0, new WeakSet());
}

function walk(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  switch (typeof value) {
    case "string":
      return maskSecrets(
        value.length > maxStringLength ? `${value.slice(0, maxStringLength)}…[truncated]` : value,
      );
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "boolean":
      return value;
    case "bigint":
      return value.toString();
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (value === null) return null;
  const object = value as object;
  if (seen.has(object)) return "[circular]";
  if (depth >= maxDepth) return "[depth]";
  seen.add(object);
  try {
    if (object instanceof Date) return Number.isNaN(object.getTime()) ? null : object.toISOString();
    if (object instanceof Error) return walk(errorFields(object), depth, seen);
    if (Array.isArray(object)) {
      const items = object.slice(0, maxArrayItems).map((item) => walk(item, depth + 1, seen) ?? null);
      if (object.length > maxArrayItems) items.push(`…${object.length - maxArrayItems} more`);
      return items;
    }
    if (object instanceof Headers || object instanceof Map) return entriesOf(object.entries(), depth, seen);
    if (object instanceof Uint8Array || object instanceof ArrayBuffer) return `[${object.byteLength} bytes]`;
    return entriesOf(Object.entries(object), depth, seen);
  } finally {
    seen.delete(object);
  }
}

function entriesOf(
  entries: Iterable<[unknown, unknown]>,
  depth: number,
  seen: WeakSet<object>,
): Record<string, unknown> {
  // Pairs, then own properties: a key is whatever was logged (a parsed body's, a header's), and assigning to
  // `out["__proto__"]` would set out's prototype instead, leaving that field out of the line.
  const out: Array<[string, unknown]> = [];
  for (const [rawKey, item] of entries) {
    const key = String(rawKey);
    if (isSensitiveKey(key)) {
      if (item !== undefined) out.push([key, redacted]);
      continue;
    }
    const clean = walk(item, depth + 1, seen);
    if (clean !== undefined) out.push([maskSecrets(key), clean]);
  }
  return Object.fromEntries(out);
}

const maxCauses = 5;
const maxStackLines = 12;

/**
 * An error as log fields: name, message, code and status when it has them, the first lines of its stack (unless
 * it is a public EdgewiseError), and its causes (at most five deep). Other properties are left out: drivers
 * hang queries, parameters and configuration on their errors.
 */
export function errorFields(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) {
    if (typeof error === "object" && error !== null && "message" in error) {
      const data = error as { code?: unknown; message?: unknown; status?: unknown };
      return {
        message: String(data.message),
        ...(typeof data.code === "string" ? { code: data.code } : {}),
        ...(typeof data.status === "number" ? { status: data.status } : {}),
      };
    }
    return { message: String(error) };
  }
  const data = error as Error & { code?: unknown; status?: unknown };
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  if (typeof data.code === "string" || typeof data.code === "number") fields.code = data.code;
  if (typeof data.status === "number") fields.status = data.status;
  // A public error (a refusal the caller was told about) is expected: where it was thrown adds only noise.
  if (depth === 0 && typeof error.stack === "string" && (error as { public?: unknown }).public !== true) {
    fields.stack = error.stack.split("\n").slice(0, maxStackLines).join("\n");
  }
  if (error.cause !== undefined && depth < maxCauses) fields.cause = errorFields(error.cause, depth + 1);
  return fields;
}
