// The role CAs, trust bundles and leaf certificates of a split deployment in one directory, and CA rotation in steps.
//
// One CA per role (gateway, actor-host, broker): a peer's role is the CA that issued its certificate, since Bun
// cannot show the client certificate to a handler (bun#14097). Verifiers read trust bundles, never a CA file
// itself, so that a CA can be replaced without a cutover: a bundle holds a role's current CA and, while that CA is
// being rotated, the previous one (`<role>-ca.previous.pem`), until every certificate in use is from the new one.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import {
  type CertFiles,
  issueCert,
  type KeyUsage,
  makeCa,
  normalizeSan,
  writeFileAtomic,
} from "./openssl.ts";

export const roles = ["gateway", "actor-host", "broker"] as const;
export type Role = (typeof roles)[number];

/**
 * Each trust bundle, and the roles whose CAs it holds: what TLS_CA_FILE (or QSTASH_CA_FILE) names on the processes
 * that check them.
 */
export const trustBundles = {
  /** The actor host's: it admits gateways and brokers. */
  "actor-host-clients-ca.pem": ["gateway", "broker"],
  /** Gateways' and brokers': they call actor hosts. */
  "actor-host-ca-bundle.pem": ["actor-host"],
  /** Actor hosts' and gateways' QSTASH_CA_FILE: they publish to the broker's API over https. */
  "broker-ca-bundle.pem": ["broker"],
} as const satisfies Record<string, readonly Role[]>;

/**
 * Each leaf certificate: the role whose CA issues it, and what it is for. The broker has two: its client certificate
 * (deliveries to actor hosts) and its API's server certificate (QSTASH_TLS_CERT_FILE), a different usage and names.
 */
export const leaves = {
  "actor-host": { role: "actor-host", usage: "serverAuth" },
  gateway: { role: "gateway", usage: "clientAuth" },
  broker: { role: "broker", usage: "clientAuth" },
  "broker-server": { role: "broker", usage: "serverAuth" },
} as const satisfies Record<string, { role: Role; usage: KeyUsage }>;
export type Leaf = keyof typeof leaves;

export const caFiles = (dir: string, role: Role): CertFiles => ({
  cert: join(dir, `${role}-ca.pem`),
  key: join(dir, `${role}-ca.key`),
});
/** The CA a rotation replaced: still trusted (its certificate only; its key is gone), until `retireOldCas`. */
export const previousCaFile = (dir: string, role: Role) => join(dir, `${role}-ca.previous.pem`);
export const leafFiles = (dir: string, leaf: Leaf): CertFiles => ({
  cert: join(dir, `${leaf}.pem`),
  key: join(dir, `${leaf}.key`),
});

/** The names a server certificate always carries: a server on this machine is reached at one of them. */
export const localSans = ["DNS:localhost", "IP:127.0.0.1"];

const readCert = (path: string) => new X509Certificate(readFileSync(path));

/**
 * A CA's common name carries the moment it was made, so the old and the new CA of a rotation differ by name as
 * well as by key (in logs, in `openssl x509 -subject`, and for TLS stacks that pick an issuer by name).
 */
function newCa(dir: string, role: Role): CertFiles {
  const made = new Date().toISOString().replace(/[-:]/g, "");
  return makeCa({ ...caFiles(dir, role), commonName: `Edgewise ${role} CA ${made}` });
}

function checkCa(dir: string, role: Role, remedy: string): CertFiles {
  const files = caFiles(dir, role);
  const cert = readCert(files.cert);
  if (!cert.checkPrivateKey(createPrivateKey(readFileSync(files.key)))) {
    throw new EdgewiseError("config.invalid", `${files.key} does not match ${files.cert}; ${remedy}`);
  }
  if (new Date(cert.validTo).getTime() < Date.now()) {
    throw new EdgewiseError("config.invalid", `${files.cert} has expired; ${remedy}`);
  }
  return files;
}

/**
 * The role's CA, kept if present and sound; made if absent, or with `force`. `force` replaces a CA at once: a
 * cutover (processes that still trust only the old one refuse certificates from the new one); a running deployment
 * rotates with `rotateCas` instead. It also ends a rotation under way: the previous CA is no longer trusted.
 */
export function keepOrMakeCa(dir: string, role: Role, force: boolean): { files: CertFiles; made: boolean } {
  const files = caFiles(dir, role);
  if (force) {
    rmSync(previousCaFile(dir, role), { force: true });
    return { files: newCa(dir, role), made: true };
  }
  const present = [files.cert, files.key].filter((path) => existsSync(path));
  if (present.length === 2) {
    return { files: checkCa(dir, role, "pass --force to remake the CAs"), made: false };
  }
  if (present.length === 1) {
    throw new EdgewiseError(
      "config.invalid",
      `found ${present[0]} without its pair; pass --force to remake the CAs`,
    );
  }
  return { files: newCa(dir, role), made: true };
}

/** Writes every trust bundle: each role's current CA, and its previous one while a rotation is under way. */
export function writeTrustBundles(dir: string): string[] {
  return Object.entries(trustBundles).map(([name, trusted]) => {
    const path = join(dir, name);
    const pems = trusted.flatMap((role) =>
      [caFiles(dir, role).cert, previousCaFile(dir, role)].filter(existsSync).map((file) => {
        const pem = readFileSync(file, "utf8");
        return pem.endsWith("\n") ? pem : `${pem}\n`;
      }),
    );
    writeFileAtomic(path, pems.join(""), 0o644);
    return path;
  });
}

/** The SANs of a server certificate beyond the local ones, so a reissue without --san (--broker-san) keeps them. */
export function previousSans(dir: string, leaf: "actor-host" | "broker-server"): string[] {
  const path = leafFiles(dir, leaf).cert;
  if (!existsSync(path)) return [];
  const names = readCert(path).subjectAltName ?? "";
  return names
    .split(", ")
    .map((name) => name.replace(/^IP Address:/, "IP:"))
    .filter((name) => /^(DNS|IP):/.test(name) && !localSans.includes(name))
    .map(normalizeSan);
}

/**
 * Issues every leaf from its role's current CA: the servers' (the actor host, the broker's API) with the SANs given,
 * the clients' with a fixed name (a client's SAN is not checked, see above).
 */
export function issueLeaves(
  dir: string,
  options: { sans: Record<"actor-host" | "broker-server", string[]>; days: number },
): Record<Leaf, CertFiles> {
  const issue = (leaf: Leaf, sans: string[]) =>
    issueCert({
      ...leafFiles(dir, leaf),
      ca: caFiles(dir, leaves[leaf].role),
      commonName: `edgewise ${leaf}`,
      sans,
      usage: [leaves[leaf].usage],
      days: options.days,
    });
  return {
    "actor-host": issue("actor-host", options.sans["actor-host"]),
    gateway: issue("gateway", ["DNS:gateway.edgewise.internal"]),
    broker: issue("broker", ["DNS:broker.edgewise.internal"]),
    "broker-server": issue("broker-server", options.sans["broker-server"]),
  };
}

export interface RotatedCa {
  role: Role;
  /** The new CA's certificate file (the role's `<role>-ca.pem`). */
  cert: string;
  serial: string;
  /** Where the replaced CA's certificate is kept, trusted until `retireOldCas`. */
  previous: string;
  previousSerial: string;
}

/**
 * Step 1 of a rotation: a new CA for each role given, the old one's certificate kept as `<role>-ca.previous.pem`,
 * and the trust bundles rewritten to hold both. Leaves are untouched: they are still from the old CA, which every
 * verifier keeps trusting. A role already being rotated is refused: its previous CA may still issue leaves in use.
 */
export function rotateCas(dir: string, rotating: readonly Role[]): RotatedCa[] {
  for (const role of rotating) {
    if (!existsSync(caFiles(dir, role).cert)) {
      throw new EdgewiseError(
        "config.invalid",
        `no ${role} CA in ${dir} to rotate; run npm run certs to make the CAs`,
      );
    }
    checkCa(dir, role, "it cannot be rotated; pass --force to remake the CAs");
    if (existsSync(previousCaFile(dir, role))) {
      throw new EdgewiseError(
        "config.invalid",
        `a rotation of the ${role} CA is under way (${previousCaFile(dir, role)} is still trusted): finish it first (npm run certs, then npm run certs -- retire-old-ca)`,
      );
    }
  }
  const rotated = rotating.map((role) => {
    const files = caFiles(dir, role);
    const previousSerial = readCert(files.cert).serialNumber;
    // The old certificate first: a rotation stopped here trusts it twice, never not at all.
    writeFileAtomic(previousCaFile(dir, role), readFileSync(files.cert, "utf8"), 0o644);
    newCa(dir, role);
    return {
      role,
      cert: files.cert,
      serial: readCert(files.cert).serialNumber,
      previous: previousCaFile(dir, role),
      previousSerial,
    };
  });
  writeTrustBundles(dir);
  return rotated;
}

/**
 * Step 3: drops each previous CA from the bundles, once every leaf of its role in `dir` is from the current CA
 * (step 2, `npm run certs`, reissues them). Which certificates the running processes present is for the operator
 * to have rolled out; the leaves here are what the tool can check. Returns the roles whose old CA was retired.
 */
export function retireOldCas(dir: string): Role[] {
  const retiring = roles.filter((role) => existsSync(previousCaFile(dir, role)));
  for (const role of retiring) {
    const ca = readCert(caFiles(dir, role).cert);
    for (const leaf of (Object.keys(leaves) as Leaf[]).filter((name) => leaves[name].role === role)) {
      const path = leafFiles(dir, leaf).cert;
      if (existsSync(path) && !readCert(path).verify(ca.publicKey)) {
        throw new EdgewiseError(
          "config.invalid",
          `${path} is not from the new ${role} CA yet: run npm run certs (step 2) and roll the new certificates out, then retire the old CA`,
        );
      }
    }
  }
  for (const role of retiring) rmSync(previousCaFile(dir, role));
  writeTrustBundles(dir);
  return retiring;
}
