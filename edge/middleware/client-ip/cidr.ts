// CIDR ranges (IPv4 and IPv6) and a matcher over a list of them, for deciding which peers are trusted proxies.
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { type Ip, isV4Mapped, parseIp, parseIpExact } from "../../../shared/net/ip.ts";

export interface Cidr {
  base: Ip;
  prefix: number;
}

/** Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). Host bits past the prefix are ignored. */
export function parseCidr(text: string): Cidr | undefined {
  const [address, bits, extra] = text.trim().split("/");
  if (address === undefined || extra !== undefined) return undefined;
  const base = parseIpExact(address);
  if (!base) return undefined;
  const max = base.version === 4 ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const prefix = bits === undefined ? max : Number(bits);
  if (prefix > max) return undefined;
  // Addresses are compared unmapped (see ip.ts), so a range inside ::ffff:0:0/96 becomes the IPv4 range it covers.
  if (isV4Mapped(base) && prefix >= 96)
    return { base: { version: 4, bytes: base.bytes.slice(12) }, prefix: prefix - 96 };
  return { base, prefix };
}

export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  if (cidr.base.version !== ip.version) return false;
  const whole = cidr.prefix >> 3;
  for (let i = 0; i < whole; i++) if (cidr.base.bytes[i] !== ip.bytes[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((cidr.base.bytes[whole]! ^ ip.bytes[whole]!) & mask) === 0;
}

/**
 * The widest range a proxy fleet is in: 10.0.0.0/8 and fc00::/7, the widest private ranges. A wider one (0.0.0.0/0,
 * ::/0) holds addresses of the internet at large, so any client there is a "proxy" whose X-Forwarded-For is believed:
 * it writes its own address, and every per-address budget (anonymous requests, refused credentials) is its to reset.
 */
const widestPrefix = { 4: 8, 6: 7 } as const;

/**
 * A predicate over address text for a list of IPs/CIDRs. A bad entry is a configuration error, raised at start,
 * not a range silently left out: a missing proxy would key every client behind it as one; so is a range wider than
 * any proxy fleet (widestPrefix), which would believe every client's forwarding header.
 */
export function cidrMatcher(entries: readonly string[]): (address: string) => boolean {
  const ranges = entries.map((entry) => {
    const cidr = parseCidr(entry);
    if (!cidr) {
      throw new EdgewiseError(
        "config.invalid",
        `TRUSTED_PROXIES: "${entry}" is not an IP address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)`,
        // Naming the variable makes it a bad setting (exit 78), not a failure to start (exit 1).
        { issues: [{ path: "TRUSTED_PROXIES", message: "not an IP address or CIDR range" }] },
      );
    }
    if (cidr.prefix < widestPrefix[cidr.base.version]) {
      throw new EdgewiseError(
        "config.invalid",
        `TRUSTED_PROXIES: "${entry}" is wider than any proxy fleet (the widest taken is an IPv4 /${widestPrefix[4]} or an IPv6 /${widestPrefix[6]}): every client in it could write its own address in the forwarding header; list the proxies' addresses or their network (e.g. 10.0.0.0/8)`,
        { issues: [{ path: "TRUSTED_PROXIES", message: "a range wider than any proxy fleet" }] },
      );
    }
    return cidr;
  });
  if (ranges.length === 0) return () => false;
  return (address) => {
    const ip = parseIp(address);
    return ip !== undefined && ranges.some((range) => cidrContains(range, ip));
  };
}
