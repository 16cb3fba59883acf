// client-cert: on Workers behind API Shield mTLS, admits only requests whose TLS client certificate Cloudflare verified.
import { createMiddleware } from "hono/factory";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { timingSafeEqual } from "../../../shared/crypto/hmac.ts";
import type { GatewayEnv } from "../../env.ts";

/** The part of `request.cf.tlsClientAuth` this checks (Cloudflare fills it when the hostname has mTLS on). */
export interface TlsClientAuth {
  certPresented?: string;
  certVerified?: string;
  certRevoked?: string;
  certFingerprintSHA256?: string;
  certNotAfter?: string;
}

export interface ClientCertOptions {
  /** Only these certificates (SHA-256 fingerprints, hex); empty = any certificate Cloudflare verified. */
  fingerprints?: readonly string[];
}

export type ClientCertRefusal = "missing" | "unverified" | "revoked" | "not_allowed";

/**
 * Why a request's client certificate is refused, or undefined when it passes. API Shield terminates TLS, so the
 * Worker never sees the certificate itself: it sees Cloudflare's verdict, which is what this reads. Cloudflare's
 * verification covers the chain to the zone's CA and the validity dates ("FAILED:certificate has expired").
 */
export function clientCertRefusal(
  auth: TlsClientAuth | undefined,
  options: ClientCertOptions = {},
): ClientCertRefusal | undefined {
  if (auth?.certPresented !== "1") return "missing";
  if (auth.certVerified !== "SUCCESS") return "unverified";
  if (auth.certRevoked !== "0") return "revoked";
  const allowed = (options.fingerprints ?? []).map((print) => print.toLowerCase());
  if (allowed.length === 0) return undefined;
  const presented = (auth.certFingerprintSHA256 ?? "").toLowerCase();
  // Every entry is compared, in constant time, so the answer's timing says nothing of which one nearly matched.
  let match = false;
  for (const print of allowed) match = timingSafeEqual(presented, print) || match;
  return match ? undefined : "not_allowed";
}

/** 401 for a request without a verified, unrevoked (and, with `fingerprints`, allowed) client certificate. */
export function requireClientCert(options: ClientCertOptions = {}) {
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const cf = (c.req.raw as Request & { cf?: { tlsClientAuth?: TlsClientAuth } }).cf;
    const refusal = clientCertRefusal(cf?.tlsClientAuth, options);
    if (refusal) {
      throw new EdgewiseError("unauthorized", `a valid TLS client certificate is required (${refusal})`);
    }
    await next();
  });
}
