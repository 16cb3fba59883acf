// IP addresses for the SSRF guard: strict parsing of canonical text, and the ranges a webhook may not reach.

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

export interface Ip {
  version: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

const v4Part = /^(0|[1-9]\d{0,2})$/;
const hexGroup = /^[0-9a-f]{1,4}$/i;

/** Dotted-quad decimal only. Other IPv4 spellings (`0x7f.1`, `2130706433`) are the URL parser's to normalize. */
function parseV4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((part) => v4Part.test(part) && Number(part) <= 255))
    return undefined;
  return Uint8Array.from(parts, Number);
}

function groups(text: string, last: boolean): number[] | undefined {
  if (text === "") return [];
  const out: number[] = [];
  const parts = text.split(":");
  for (const [i, part] of parts.entries()) {
    if (last && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseV4(part);
      if (!v4) return undefined;
      out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else if (hexGroup.test(part)) {
      out.push(Number.parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return out;
}

function parseV6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = groups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  for (const [i, group] of all.entries()) {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  }
  return bytes;
}

/**
 * Parses an address as a resolver or the URL parser writes it: dotted IPv4, or IPv6 with or without
 * brackets. A zone id (`fe80::1%eth0`) is refused: nothing legitimate sends a webhook to one.
 */
export function parseIp(text: string): Ip | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (bare.includes(":")) {
    const bytes = bare.includes("%") ? undefined : parseV6(bare);
    return bytes ? { version: 6, bytes } : undefined;
  }
  const bytes = parseV4(bare);
  return bytes ? { version: 4, bytes } : undefined;
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
