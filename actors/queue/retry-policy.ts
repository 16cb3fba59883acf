// QStash's retry policy (its backoff, Retry-After, Upstash-Delay durations): the local broker's, and its callers'.

/** QStash's documented backoff: min(86400, e^(2.5·n)) seconds for retry number n (1, 2, 3, …), in ms. */
export function backoffMs(retryNumber: number, timeScale: number): number {
  const seconds = Math.min(86_400, Math.exp(2.5 * Math.max(1, retryNumber)));
  return Math.round(seconds * 1000 * timeScale);
}

/**
 * How long the backoff spreads `retries` retries of one message over (timeScale 1), in ms: the latest a message the
 * receiver already applied (its answer lost) may come again, unless a Retry-After asks for longer. 3 retries: about
 * 33 minutes; 20: about 16 days.
 */
export function redeliveryHorizonMs(retries: number): number {
  let total = 0;
  for (let n = 1; n <= retries; n++) total += backoffMs(n, 1);
  return total;
}

/** The three HTTP-date forms (RFC 9110 5.6.7): IMF-fixdate, RFC 850, and asctime (which names no zone: GMT). */
const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC_850 = /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

function httpDate(text: string): number | undefined {
  const at =
    IMF_FIXDATE.test(text) || RFC_850.test(text)
      ? Date.parse(text)
      : ASCTIME.test(text)
        ? Date.parse(`${text} GMT`)
        : Number.NaN;
  return Number.isNaN(at) ? undefined : at;
}

/**
 * A `Retry-After` response header as a delay in ms (before timeScale): delta-seconds, a duration such as `6m5s`
 * (QStash reads those too), or an HTTP date. Capped at one day, like the backoff. Undefined when absent or
 * unreadable, and the backoff applies: Date.parse alone reads junk such as `abc 1` as a date in 2001, which
 * retried at once until the retries ran out.
 */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(86_400_000, Math.round(Number(text) * 1000));
  const duration = parseDuration(text);
  if (duration !== undefined) return Math.min(86_400_000, duration);
  const at = httpDate(text);
  return at === undefined ? undefined : Math.min(86_400_000, Math.max(0, at - now));
}

/** When the next attempt is due, after a failed attempt that was retry number `retryNumber - 1`. */
export function nextAttemptAt(
  retryNumber: number,
  retryAfterHeader: string | null,
  now: number,
  timeScale: number,
): number {
  const hinted = retryAfterMs(retryAfterHeader, now);
  const delay = hinted === undefined ? backoffMs(retryNumber, timeScale) : Math.round(hinted * timeScale);
  return now + delay;
}

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/**
 * A duration as QStash writes them, one unit or several (`10s`, `1d10h30m`), in ms; undefined if malformed.
 * `500ms` and decimals (`1.5h`) are accepted too.
 */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART))
    ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return Math.round(ms);
}

/** `Upstash-Delay` / `Upstash-Timeout`: a duration (`10s`, `1d10h30m`, `500ms`), or bare seconds. Undefined if malformed. */
export function parseDelayHeader(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  return parseDuration(trimmed);
}
