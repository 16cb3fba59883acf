// IP addresses for the SSRF guard: strict parsing of canonical text, and the ranges a webhook may not reach.
import { type Ip, parseIpExact } from "../../../shared/net/ip.ts";

/** What an address is for. Only `public` may be the target of a webhook. */
export type AddressKind =
  | "public"
  | "unspecified"
  | "loopback"
  | "private"
  | "link-local"
  | "shared"
  | "multicast"
  | "broadcast"
  | "reserved";

export type { Ip };

/**
 * Parses an address as a resolver or the URL parser writes it: dotted IPv4, or IPv6 with or without
 * brackets. A zone id (`fe80::1%eth0`) is refused: nothing legitimate sends a webhook to one. Other IPv4
 * spellings (`0x7f.1`, `2130706433`) are the URL parser's to normalize. The parsing itself is the gateway's
 * strict parser (shared/net/ip.ts), without its unwrapping of IPv4-mapped addresses: the guard classifies
 * those itself.
 */
export function parseIp(text: string): Ip | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (bare.includes("%") || bare !== bare.trim()) return undefined;
  return parseIpExact(bare);
}

/** The forms that carry an IPv4 address, which then decides: tunnels and translators reach it. */
type Embedding = "mapped" | "compatible" | "nat64" | "6to4";
type Range = readonly [prefix: readonly number[], bits: number, kind: AddressKind | Embedding];

/** First match wins, so narrower ranges come first. */
const v4Ranges: readonly Range[] = [
  [[255, 255, 255, 255], 32, "broadcast"],
  [[0], 8, "unspecified"],
  [[10], 8, "private"],
  [[100, 64], 10, "shared"],
  [[127], 8, "loopback"],
  [[169, 254], 16, "link-local"],
  [[172, 16], 12, "private"],
  [[192, 0, 0], 24, "reserved"],
  [[192, 0, 2], 24, "reserved"],
  [[192, 88, 99], 24, "reserved"],
  [[192, 168], 16, "private"],
  [[198, 18], 15, "reserved"],
  [[198, 51, 100], 24, "reserved"],
  [[203, 0, 113], 24, "reserved"],
  [[224], 4, "multicast"],
  [[240], 4, "reserved"],
];

const v6Ranges: readonly Range[] = [
  [new Array(16).fill(0), 128, "unspecified"],
  [[...new Array(15).fill(0), 1], 128, "loopback"],
  [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 96, "mapped"],
  [new Array(12).fill(0), 96, "compatible"], // deprecated
  [[0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], 96, "nat64"],
  [[0, 0x64, 0xff, 0x9b, 0, 1], 48, "private"], // local-use NAT64
  [[0x01, 0x00, 0, 0, 0, 0, 0, 0], 64, "reserved"], // discard-only
  [[0x20, 0x01, 0x0d, 0xb8], 32, "reserved"], // documentation
  [[0x20, 0x01, 0x00], 23, "reserved"], // IETF protocol assignments, Teredo
  [[0x20, 0x02], 16, "6to4"],
  [[0xfc], 7, "private"], // unique local
  [[0xfe, 0x80], 10, "link-local"],
  [[0xfe, 0xc0], 10, "private"], // site-local (deprecated)
  [[0xff], 8, "multicast"],
];

function matches(bytes: Uint8Array, prefix: readonly number[], bits: number): boolean {
  for (let bit = 0; bit < bits; bit += 8) {
    const mask = bits - bit >= 8 ? 0xff : (0xff << (8 - (bits - bit))) & 0xff;
    if (((bytes[bit >> 3] ?? 0) & mask) !== ((prefix[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

export function classifyIp(ip: Ip): AddressKind {
  const ranges = ip.version === 4 ? v4Ranges : v6Ranges;
  const range = ranges.find(([prefix, bits]) => matches(ip.bytes, prefix, bits));
  const kind = range?.[2];
  if (kind === "mapped" || kind === "compatible" || kind === "nat64" || kind === "6to4") {
    const start = kind === "6to4" ? 2 : 12;
    const inner = classifyIp({ version: 4, bytes: ip.bytes.slice(start, start + 4) });
    // A public IPv4 in the deprecated compatible form still has no business being a webhook target.
    return kind === "compatible" && inner === "public" ? "reserved" : inner;
  }
  if (kind) return kind;
  // Outside 2000::/3 nothing is allocated for global unicast.
  return ip.version === 6 && (ip.bytes[0]! & 0xe0) !== 0x20 ? "reserved" : "public";
}

/** The kind of an address written as text; undefined when it is not an address. */
export function classifyAddress(text: string): AddressKind | undefined {
  const ip = parseIp(text);
  return ip ? classifyIp(ip) : undefined;
}
