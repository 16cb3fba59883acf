// The SSRF guard: a webhook URL may only reach public addresses over http(s), checked again on every attempt.
import { formatIp } from "../../../shared/net/ip.ts";
import { type AddressKind, classifyIp, parseIp } from "./ip.ts";

/**
 * The DNS port: every address a name resolves to (A and AAAA). Runtime-specific, so the entry injects it
 * (dns-resolver.ts for Bun and Deno). Rejects or returns nothing when the name does not resolve.
 */
export type Resolve = (hostname: string) => Promise<readonly string[]>;

export interface TargetPolicy {
  /** WEBHOOKS_ALLOW_PRIVATE=1: skip the address checks (tests, development). The scheme is still checked. */
  allowPrivate?: boolean;
  resolve: Resolve;
  /**
   * These exact addresses pass although they are not public, and names resolving to them are still checked and
   * pinned. For tests that aim a name at a loopback receiver; no configuration sets it.
   */
  allowAddresses?: readonly string[];
}

/**
 * Why a target was refused. All but `unresolved` are permanent: retrying cannot help. `unresolved` may be a
 * DNS hiccup.
 */
export type TargetRefusal = "invalid_url" | "scheme" | "credentials" | "localhost" | "address" | "unresolved";

export type TargetCheck =
  | {
      allowed: true;
      url: URL;
      /** What the POST may connect to: the literal or the name's addresses; empty under allowPrivate. */
      addresses: readonly string[];
    }
  | {
      allowed: false;
      reason: TargetRefusal;
      message: string;
      /** For `address`: the offending address, and its kind (undefined when it was not an address at all). */
      address?: string;
      kind?: AddressKind;
    };

const refuse = (
  reason: TargetRefusal,
  message: string,
  extra: { address?: string; kind?: AddressKind } = {},
) => ({ allowed: false, reason, message, ...extra }) as const;

function checkAddress(address: string, allowed: ReadonlySet<string>): TargetCheck | undefined {
  const ip = parseIp(address);
  if (!ip) return refuse("address", `"${address}" is not an IP address`, { address });
  const kind = classifyIp(ip);
  if (kind !== "public" && !allowed.has(formatIp(ip))) {
    return refuse("address", `${address} is a ${kind} address`, { address, kind });
  }
  return undefined;
}

function allowedAddresses(policy: TargetPolicy): ReadonlySet<string> {
  const parsed = (policy.allowAddresses ?? []).map((text) => parseIp(text));
  return new Set(parsed.flatMap((ip) => (ip ? [formatIp(ip)] : [])));
}

/**
 * Decides whether a webhook may be sent to `url`. IP literals in every spelling (`2130706433`, `0x7f.1`,
 * `0177.0.0.1`, `127.1`) are normalized by the WHATWG URL parser before they get here; names are resolved and
 * refused when ANY address is not public, so a name with one private record cannot be aimed inside.
 *
 * An allowed check carries the addresses it approved, and delivery connects to those (a pinning PostWebhook:
 * node-post.ts on Bun and Deno), so a name whose records change after the check (DNS rebinding) cannot move the
 * connection. On Workers the POST is a fetch that resolves again (post.ts says why that is acceptable there).
 * Under `allowPrivate` names are not resolved and `addresses` is empty: no address would be refused.
 */
export async function checkTarget(url: string | URL, policy: TargetPolicy): Promise<TargetCheck> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return refuse("invalid_url", "not an absolute URL");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    return refuse("scheme", `scheme ${parsed.protocol} is not allowed: use http or https`);
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return refuse("credentials", "a URL with credentials is not allowed");
  }
  if (policy.allowPrivate) return { allowed: true, url: parsed, addresses: [] };

  const allowed = allowedAddresses(policy);
  const host = parsed.hostname;
  if (host.startsWith("[") || parseIp(host)) {
    return checkAddress(host, allowed) ?? { allowed: true, url: parsed, addresses: [host] };
  }
  const name = host.replace(/\.$/, "").toLowerCase();
  if (name === "localhost" || name.endsWith(".localhost")) {
    return refuse("localhost", `${name} is always loopback`);
  }
  let addresses: readonly string[];
  try {
    addresses = await policy.resolve(name);
  } catch {
    addresses = [];
  }
  if (addresses.length === 0) return refuse("unresolved", `${name} does not resolve`);
  for (const address of addresses) {
    const refused = checkAddress(address, allowed);
    // The address stays on the result for the operator's log, not in the message the caller reads: echoing what
    // an inside name resolves to would let a webhooks:admin caller map the internal network through this check.
    if (refused && !refused.allowed) {
      return refuse("address", `${name} resolves to a ${refused.kind ?? "non-public"} address`, {
        address,
        ...(refused.kind ? { kind: refused.kind } : {}),
      });
    }
  }
  return { allowed: true, url: parsed, addresses };
}

/** True when retrying the same URL later cannot succeed. */
export const isPermanentRefusal = (reason: TargetRefusal): boolean => reason !== "unresolved";
