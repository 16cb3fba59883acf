// clientIp(): sets `c.var.clientIp` (and `clientProto`) from the runtime's peer, believing forwarding headers only from trusted proxies.
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../../env.ts";
import { cidrMatcher } from "./cidr.ts";
import { canonicalIp } from "../../../shared/net/ip.ts";
import { forwardedHops, forwardedProto, resolveClientIp, xForwardedForHops } from "./forwarded.ts";

export interface ClientIpOptions {
  /** Proxies whose forwarding header is believed: IPs or CIDRs, IPv4 or IPv6 (TRUSTED_PROXIES). */
  trustedProxies: readonly string[];
  /**
   * Where the peer address comes from. Bun and Deno: `c.env.remoteAddress`, which the entry fills from the
   * socket. Workers: `CF-Connecting-IP`, which Cloudflare's edge overwrites on every request from the internet;
   * anywhere else a client can send that header, so it is read on Workers only.
   */
  platform: "bun" | "deno" | "workers";
  /**
   * The one header the trusted proxies write. Only one is read: a proxy passes the other through untouched, so
   * reading both would let a client supply the hop the proxy never wrote. Default `x-forwarded-for`.
   */
  forwardedHeader?: "x-forwarded-for" | "forwarded";
  /** The value when the runtime reports no peer (e.g. `app.request()` without bindings). Default `unknown`. */
  unknown?: string;
}

export function clientIp(options: ClientIpOptions): MiddlewareHandler<GatewayEnv> {
  const { trustedProxies, platform, forwardedHeader, unknown } = {
    forwardedHeader: "x-forwarded-for" as const,
    unknown: "unknown",
    ...options,
  };
  const isTrusted = cidrMatcher(trustedProxies);
  const hopsOf = forwardedHeader === "forwarded" ? forwardedHops : xForwardedForHops;
  const believesHeaders = trustedProxies.length > 0;

  // Without forwarding hops the answer depends on the peer alone: remember it, since a client (or a proxy in
  // front) sends many requests. Bounded: cleared when full, so an address scan cannot grow it.
  const byPeer = new Map<string, string>();
  const fromPeer = (peer: string | undefined) => {
    if (peer === undefined) return resolveClientIp(peer, [], isTrusted) ?? unknown;
    let ip = byPeer.get(peer);
    if (ip === undefined) {
      ip = resolveClientIp(peer, [], isTrusted) ?? unknown;
      if (byPeer.size >= 4096) byPeer.clear();
      byPeer.set(peer, ip);
    }
    return ip;
  };

  // The scheme's header: with X-Forwarded-For, X-Forwarded-Proto; with Forwarded, its own `proto=`.
  const protoHeader = forwardedHeader === "forwarded" ? "forwarded" : "x-forwarded-proto";
  const peerTrusted = (peer: string | undefined) => {
    const address = peer === undefined ? undefined : canonicalIp(peer.trim());
    return address !== undefined && isTrusted(address);
  };

  return async function clientIpMiddleware(c, next) {
    const peer = platform === "workers" ? c.req.header("cf-connecting-ip") : c.env?.remoteAddress;
    const hops = believesHeaders ? hopsOf(c.req.header(forwardedHeader)) : [];
    c.set(
      "clientIp",
      hops.length === 0 ? fromPeer(peer) : (resolveClientIp(peer, hops, isTrusted) ?? unknown),
    );
    // The connection's own scheme, unless a trusted proxy says which one the client used: anyone else's header is
    // the client's own word (a Secure cookie over plain http, say).
    const said = believesHeaders ? c.req.header(protoHeader) : undefined;
    const forwarded = said === undefined ? undefined : forwardedProto(forwardedHeader, said);
    c.set(
      "clientProto",
      forwarded !== undefined && peerTrusted(peer)
        ? forwarded
        : c.req.url.startsWith("https:")
          ? "https"
          : "http",
    );
    await next();
  };
}

export { canonicalIp, formatIp, parseIp } from "../../../shared/net/ip.ts";
export { cidrMatcher, parseCidr } from "./cidr.ts";
export { forwardedProto, resolveClientIp } from "./forwarded.ts";
