// The proxy chain: hops from X-Forwarded-For or Forwarded (RFC 7239), and the walk that picks the client among them.
import { canonicalIp } from "../../../shared/net/ip.ts";

/** Splits on commas outside quoted strings (a quoted `for=` value may hold anything a client typed). */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === "\\" && quoted) {
      current += char + (text[i + 1] ?? "");
      i++;
    } else if (char === '"') {
      quoted = !quoted;
      current += char;
    } else if (char === separator && !quoted) {
      parts.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

/** The host of one hop: quotes, `[v6]`, and a port (`1.2.3.4:80`, `[::1]:80`) removed. */
export function hopHost(hop: string): string {
  let host = hop.trim();
  if (host.length >= 2 && host.startsWith('"') && host.endsWith('"')) host = host.slice(1, -1).trim();
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end < 0 ? host : host.slice(1, end);
  }
  const colon = host.indexOf(":");
  if (colon >= 0 && colon === host.lastIndexOf(":") && host.includes(".")) return host.slice(0, colon);
  return host;
}

/** Hops of `X-Forwarded-For: client, proxy1, proxy2`, leftmost first. */
export function xForwardedForHops(header: string | undefined): string[] {
  if (!header) return [];
  return header.split(",").map(hopHost);
}

/** Hops of `Forwarded: for=client;proto=https, for="[2001:db8::1]:443"`, leftmost first; an element without `for=` counts as an unknown hop. */
export function forwardedHops(header: string | undefined): string[] {
  if (!header) return [];
  return splitOutsideQuotes(header, ",").map((element) => {
    for (const pair of splitOutsideQuotes(element, ";")) {
      const eq = pair.indexOf("=");
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === "for") return hopHost(pair.slice(eq + 1));
    }
    return "unknown";
  });
}

/**
 * The scheme the nearest proxy says the client used: the last `X-Forwarded-Proto` value (a proxy that appends
 * writes its own last), or the `proto=` of `Forwarded`'s last element (the one the nearest proxy wrote). Undefined
 * when it says neither `http` nor `https`.
 */
export function forwardedProto(
  header: "x-forwarded-for" | "forwarded",
  value: string | undefined,
): "http" | "https" | undefined {
  if (!value) return undefined;
  let proto: string | undefined;
  if (header === "x-forwarded-for") proto = value.split(",").at(-1);
  else {
    for (const pair of splitOutsideQuotes(splitOutsideQuotes(value, ",").at(-1) ?? "", ";")) {
      const eq = pair.indexOf("=");
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === "proto") proto = pair.slice(eq + 1);
    }
  }
  const scheme = proto
    ?.trim()
    .replace(/^"(.*)"$/, "$1")
    .toLowerCase();
  return scheme === "https" || scheme === "http" ? scheme : undefined;
}

/**
 * The client address: the direct peer, unless it is a trusted proxy; then the rightmost hop that is not one.
 * Each trusted proxy appends the address it saw, so everything left of the first untrusted hop (from the right)
 * was written by the client and is ignored. A hop that is not an address (`unknown`, `_hidden`, garbage) ends the
 * walk at the last address a trusted proxy vouched for, so junk can never move the key somewhere new.
 */
export function resolveClientIp(
  peer: string | undefined,
  hops: readonly string[],
  isTrusted: (address: string) => boolean,
): string | undefined {
  const raw = peer?.trim();
  if (!raw) return undefined;
  const direct = canonicalIp(raw);
  if (direct === undefined) return raw;
  if (!isTrusted(direct)) return direct;
  let last = direct;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = canonicalIp(hops[i]!);
    if (hop === undefined) return last;
    if (!isTrusted(hop)) return hop;
    last = hop;
  }
  return last;
}
