// IP addresses as bytes: strict IPv4/IPv6 parsing, IPv4-mapped unwrapping and one canonical text form per address (client IPs, the SSRF guard).

export interface Ip {
  version: 4 | 6;
  /** 4 bytes for IPv4, 16 for IPv6, network order. */
  bytes: Uint8Array;
}

const v4Part = /^(0|[1-9]\d{0,2})$/;
const hexGroup = /^[0-9a-f]{1,4}$/i;

function parseV4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    // Leading zeros are refused: some stacks read `010` as octal, so it would name a different host.
    if (!v4Part.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    bytes[i] = n;
  }
  return bytes;
}

function groupsOf(text: string): number[] | undefined {
  if (text === "") return [];
  const groups: number[] = [];
  const parts = text.split(":");
  for (const [i, part] of parts.entries()) {
    if (i === parts.length - 1 && part.includes(".")) {
      const v4 = parseV4(part);
      if (!v4) return undefined;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else if (hexGroup.test(part)) {
      groups.push(Number.parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseV6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (!head || !tail) return undefined;
  // An embedded IPv4 part may only end the address, so it cannot sit in the head of `a.b.c.d::…`.
  if (halves.length === 2 && halves[0]!.includes(".")) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  for (const [i, group] of groups.entries()) {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  }
  return bytes;
}

/** Parses an address as written, without unwrapping IPv4-mapped IPv6. A zone (`%eth0`) is dropped. */
export function parseIpExact(text: string): Ip | undefined {
  const trimmed = text.trim();
  if (trimmed.includes(":")) {
    const zone = trimmed.indexOf("%");
    const bytes = parseV6(zone < 0 ? trimmed : trimmed.slice(0, zone));
    return bytes ? { version: 6, bytes } : undefined;
  }
  const bytes = parseV4(trimmed);
  return bytes ? { version: 4, bytes } : undefined;
}

/** True for ::ffff:a.b.c.d, the form a dual-stack socket reports an IPv4 peer in. */
export function isV4Mapped(ip: Ip): boolean {
  if (ip.version !== 6) return false;
  for (let i = 0; i < 10; i++) if (ip.bytes[i] !== 0) return false;
  return ip.bytes[10] === 0xff && ip.bytes[11] === 0xff;
}

/** ::ffff:1.2.3.4 becomes 1.2.3.4, so one client has one key whichever socket family it came in on. */
export function unmap(ip: Ip): Ip {
  return isV4Mapped(ip) ? { version: 4, bytes: ip.bytes.slice(12) } : ip;
}

/** Parses and normalizes an address; undefined when it is not one. */
export function parseIp(text: string): Ip | undefined {
  const ip = parseIpExact(text);
  return ip ? unmap(ip) : undefined;
}

/** The canonical text: dotted IPv4, or RFC 5952 IPv6 (lowercase, longest zero run compressed). */
export function formatIp(ip: Ip): string {
  if (ip.version === 4) return Array.from(ip.bytes).join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((group) => group.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** Normalizes address text to its canonical form; undefined when it is not an address. */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip ? formatIp(ip) : undefined;
}

/**
 * A host only this machine reaches: `localhost`, 127.0.0.0/8 or ::1, bracketed or not, IPv4-mapped too. For
 * deciding whether a listener or a URL stays on this machine (what a node prints, which defaults it may keep).
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.trim().replace(/^\[(.*)\]$/, "$1");
  if (bare.toLowerCase() === "localhost") return true;
  const ip = parseIp(bare);
  if (!ip) return false;
  if (ip.version === 4) return ip.bytes[0] === 127;
  return ip.bytes.every((byte, i) => byte === (i === 15 ? 1 : 0));
}
