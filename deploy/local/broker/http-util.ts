// HTTP plumbing for the broker: QStash-shaped JSON errors, bearer-token auth, bounded bodies, query params.
import { timingSafeEqual } from "../../../shared/crypto/hmac.ts";
import { readBoundedBody } from "../../../shared/net/body.ts";

/** An error the broker answers with `{"error": message}` and this status; nothing has been changed. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const json = (value: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(value), {
    status,
    headers: { ...headers, "content-type": "application/json" },
  });

export const empty = (status = 200): Response => new Response(null, { status });

export const errorResponse = (
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response => json({ error: message }, status, headers);

/**
 * `Authorization: Bearer <token>`, or `?qstash_token=<token>` where headers cannot be set. During a rotation the
 * previous token is accepted too; both are compared, whichever matches, so the time says nothing of which did.
 */
export function authorize(req: Request, url: URL, token: string, previousToken?: string): void {
  const header = req.headers.get("authorization");
  const given = header?.startsWith("Bearer ") ? header.slice(7).trim() : url.searchParams.get("qstash_token");
  const current = given ? timingSafeEqual(given, token) : false;
  const previous = given && previousToken !== undefined ? timingSafeEqual(given, previousToken) : false;
  if (!current && !previous) throw new HttpError(401, "Unauthorized: invalid or missing token");
}

/** The request body, refused with 413 past `limit` bytes (checked before and while reading). */
export const readBody = (req: Request, limit: number): Promise<Uint8Array> =>
  readBoundedBody(req, limit, () => new HttpError(413, `request body exceeds the limit of ${limit} bytes`));

/** All values of a repeatable query parameter (also comma-separated, unless `split` is false), or undefined. */
export function listParam(url: URL, name: string, split = true): string[] | undefined {
  const values = url.searchParams
    .getAll(name)
    .flatMap((v) => (split ? v.split(",") : [v]))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
  return values.length > 0 ? values : undefined;
}

export function intParam(url: URL, name: string): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return undefined;
  if (!/^-?\d+$/.test(text)) throw new HttpError(400, `query parameter ${name} must be an integer`);
  // Past 2^53 the digits are not the number (and Postgres' bigint refuses what they round to): a 400, not a 500.
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new HttpError(400, `query parameter ${name} is out of range`);
  return value;
}

export function countParam(url: URL, fallback: number, max: number): number {
  const count = intParam(url, "count") ?? fallback;
  if (count < 1) throw new HttpError(400, "count must be at least 1");
  return Math.min(count, max);
}

/** Bodies as QStash shows them: UTF-8 text in `body`, anything else base64 in `bodyBase64`. */
export function bodyFields(body: Uint8Array | null): { body?: string; bodyBase64?: string } {
  if (!body || body.byteLength === 0) return {};
  try {
    return { body: new TextDecoder("utf-8", { fatal: true }).decode(body) };
  } catch {
    return { bodyBase64: Buffer.from(body).toString("base64") };
  }
}
