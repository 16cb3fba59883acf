// Makes development certificates with the openssl CLI: a role CA, and P-256 leaves it signs (SANs, EKU, dates).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { EdgewiseError } from "../../../shared/errors/index.ts";

/** Where a certificate and its private key live (PEM files; the key is written with mode 0600). */
export interface CertFiles {
  cert: string;
  key: string;
}

export interface CaOptions extends CertFiles {
  commonName: string;
  /** Default 3650. */
  days?: number;
}

export type KeyUsage = "serverAuth" | "clientAuth";

export interface LeafOptions extends CertFiles {
  ca: CertFiles;
  commonName: string;
  /** `DNS:name` or `IP:address`; a bare value is taken as an IP if it looks like one, else a DNS name. */
  sans?: string[];
  usage: KeyUsage[];
  /** Default: five minutes ago, to allow for clock skew. */
  notBefore?: Date;
  /** Default: notBefore plus `days`. May be in the past, for an expired certificate. */
  notAfter?: Date;
  /** Default 90. */
  days?: number;
}

const binary = () => process.env.OPENSSL || "openssl";

function openssl(args: string[], cwd: string): string {
  try {
    return execFileSync(binary(), args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const failure = error as { code?: string; stderr?: string };
    if (failure.code === "ENOENT") {
      throw new EdgewiseError(
        "config.invalid",
        `the openssl CLI was not found (looked for ${JSON.stringify(binary())}); install OpenSSL or set OPENSSL`,
      );
    }
    // openssl's stderr names files and options, never key material.
    const detail = String(failure.stderr ?? "").trim();
    throw new EdgewiseError("internal", `openssl ${args[0]} failed: ${detail || String(error)}`, {
      cause: error,
    });
  }
}

/** The openssl version line, e.g. `OpenSSL 3.0.19 27 Jan 2026`; throws a clear error if openssl is missing. */
export function opensslVersion(): string {
  return openssl(["version"], tmpdir()).trim();
}

const safeName = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;
const safeSanValue = /^[A-Za-z0-9*][A-Za-z0-9.:*-]{0,252}$/;

function checkName(name: string): string {
  if (!safeName.test(name))
    throw new EdgewiseError("config.invalid", `invalid common name ${JSON.stringify(name)}`);
  return name;
}

/** Normalizes a SAN to `DNS:…` or `IP:…`, refusing anything that could break out of the openssl config. */
export function normalizeSan(san: string): string {
  const match = /^(DNS|IP):(.*)$/i.exec(san.trim());
  const value = match ? (match[2] ?? "") : san.trim();
  const kind = match ? (match[1] ?? "").toUpperCase() : /^[\d.]+$|:/.test(value) ? "IP" : "DNS";
  if (!safeSanValue.test(value))
    throw new EdgewiseError("config.invalid", `invalid SAN ${JSON.stringify(san)}`);
  return `${kind}:${value}`;
}

/** Writes a file atomically (temp file, then rename), so a watcher never reads it half-written. */
export function writeFileAtomic(path: string, content: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(temporary, content, { mode });
  chmodSync(temporary, mode);
  renameSync(temporary, path);
}

function inScratch<T>(work: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-openssl-"));
  try {
    return work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function newKey(dir: string): string {
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "key.pem"], dir);
  return readFileSync(join(dir, "key.pem"), "utf8");
}

/** `openssl ca` date format (GeneralizedTime), e.g. 20260101120000Z. */
const asn1Time = (date: Date) => `${date.toISOString().replace(/[-:T]/g, "").slice(0, 14)}Z`;

/** Makes a self-signed CA (EC P-256) that may only sign certificates. */
export function makeCa(options: CaOptions): CertFiles {
  inScratch((dir) => {
    const key = newKey(dir);
    writeFileSync(
      join(dir, "req.cnf"),
      [
        "[req]",
        "prompt = no",
        "distinguished_name = dn",
        "x509_extensions = v3_ca",
        "[dn]",
        `CN = ${checkName(options.commonName)}`,
        "[v3_ca]",
        "basicConstraints = critical, CA:TRUE, pathlen:0",
        "keyUsage = critical, keyCertSign, cRLSign",
        "subjectKeyIdentifier = hash",
        "",
      ].join("\n"),
    );
    const days = String(options.days ?? 3650);
    openssl(
      [..."req -x509 -new -config req.cnf -key key.pem -sha256 -out cert.pem -days".split(" "), days],
      dir,
    );
    writeFileAtomic(options.key, key, 0o600);
    writeFileAtomic(options.cert, readFileSync(join(dir, "cert.pem"), "utf8"), 0o644);
  });
  return { cert: options.cert, key: options.key };
}

/** Issues a leaf certificate signed by `ca`, with a fresh key, exact validity dates, SANs and extended key usage. */
export function issueCert(options: LeafOptions): CertFiles {
  const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + (options.days ?? 90) * 86_400_000);
  if (notAfter <= notBefore) throw new EdgewiseError("config.invalid", "notAfter must be after notBefore");
  if (options.usage.length === 0)
    throw new EdgewiseError("config.invalid", "a leaf needs at least one usage");
  const sans = (options.sans ?? []).map(normalizeSan);
  inScratch((dir) => {
    const key = newKey(dir);
    writeFileSync(
      join(dir, "req.cnf"),
      `[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = ${checkName(options.commonName)}\n`,
    );
    writeFileSync(join(dir, "index.txt"), "");
    // A random positive 128-bit serial, so every issued certificate is told apart (rotation tests rely on it).
    writeFileSync(join(dir, "serial"), `${randomBytes(16).toString("hex").replace(/^./, "1")}\n`);
    writeFileSync(
      join(dir, "ca.cnf"),
      [
        "[ca]",
        "default_ca = edgewise",
        "[edgewise]",
        `database = ${join(dir, "index.txt")}`,
        `new_certs_dir = ${dir}`,
        `serial = ${join(dir, "serial")}`,
        "unique_subject = no",
        "default_md = sha256",
        "copy_extensions = none",
        "policy = any",
        "[any]",
        "commonName = supplied",
        "[leaf]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature",
        `extendedKeyUsage = ${options.usage.join(", ")}`,
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid",
        ...(sans.length > 0 ? [`subjectAltName = ${sans.join(", ")}`] : []),
        "",
      ].join("\n"),
    );
    openssl(["req", "-new", "-config", "req.cnf", "-key", "key.pem", "-out", "leaf.csr"], dir);
    // `openssl ca` (unlike `x509 -req` before OpenSSL 3.4) takes exact start and end dates, past ones included.
    const dates = ["-startdate", asn1Time(notBefore), "-enddate", asn1Time(notAfter)];
    const signer = ["-cert", resolve(options.ca.cert), "-keyfile", resolve(options.ca.key)];
    const ca = "ca -batch -notext -config ca.cnf -extensions leaf -in leaf.csr -out cert.pem".split(" ");
    openssl([...ca, ...signer, ...dates], dir);
    writeFileAtomic(options.key, key, 0o600);
    writeFileAtomic(options.cert, readFileSync(join(dir, "cert.pem"), "utf8"), 0o644);
  });
  return { cert: options.cert, key: options.key };
}
