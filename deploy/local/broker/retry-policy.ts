// Retry policy: QStash's backoff, Retry-After, and the duration formats of Upstash-Delay / Upstash-Timeout.
import { parseDuration } from "../../../shared/config/index.ts";

/** QStash's documented backoff: min(86400, e^(2.5·n)) seconds for retry number n (1, 2, 3, …), in ms. */
export function backoffMs(retryNumber: number, timeScale: number): number {
  const seconds = Math.min(86_400, Math.exp(2.5 * Math.max(1, retryNumber)));
  return Math.round(seconds * 1000 * timeScale);
}

/**
 * A `Retry-After` response header as a delay in ms (before timeScale): delta-seconds or an HTTP date.
 * Capped at one day, like the backoff. Undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(86_400_000, Math.round(Number(text) * 1000));
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.min(86_400_000, Math.max(0, at - now));
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

/** `Upstash-Delay` / `Upstash-Timeout`: `10s`, `2m`, `1h`, `1d`, `500ms`, or bare seconds. Undefined if malformed. */
export function parseDelayHeader(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  return parseDuration(trimmed);
}
