// CLI: `npm run certs [-- --out <dir>] [--san <SAN>]... [--force]` makes the mutual TLS certificates of a split deployment.
//
// One CA per role (gateway, actor-host, broker): a peer's role is the CA that issued its certificate, since Bun
// cannot show the client certificate to a handler (bun#14097). The actor host trusts the gateway and broker CAs
// (actor-host-clients-ca.pem); the gateway and the broker trust the actor-host CA. Existing CAs are kept unless
// --force; leaf certificates are reissued on every run, so re-running rotates them (listeners follow the files).
import { X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { EdgewiseError, isEdgewiseError } from "../../../shared/errors/index.ts";
import {
  type CertFiles,
  issueCert,
  makeCa,
  normalizeSan,
  opensslVersion,
  writeFileAtomic,
} from "./openssl.ts";

const roles = ["gateway", "actor-host", "broker"] as const;
type Role = (typeof roles)[number];

function keepOrMakeCa(dir: string, role: Role, force: boolean): { files: CertFiles; made: boolean } {
  const files = { cert: join(dir, `${role}-ca.pem`), key: join(dir, `${role}-ca.key`) };
  const present = [files.cert, files.key].filter((path) => existsSync(path));
  if (!force && present.length === 2) {
    const cert = new X509Certificate(readFileSync(files.cert));
    if (!cert.checkPrivateKey(createPrivateKey(readFileSync(files.key)))) {
      throw new EdgewiseError(
        "config.invalid",
        `${files.key} does not match ${files.cert}; pass --force to remake the CAs`,
      );
    }
    if (new Date(cert.validTo).getTime() < Date.now()) {
      throw new EdgewiseError("config.invalid", `${files.cert} has expired; pass --force to remake the CAs`);
    }
    return { files, made: false };
  }
  if (!force && present.length === 1) {
    throw new EdgewiseError(
      "config.invalid",
      `found ${present[0]} without its pair; pass --force to remake the CAs`,
    );
  }
  return { files: makeCa({ ...files, commonName: `Edgewise ${role} CA` }), made: true };
}

function previousSans(path: string): string[] {
  if (!existsSync(path)) return [];
  const names = new X509Certificate(readFileSync(path)).subjectAltName ?? "";
  return names
    .split(", ")
    .map((name) => name.replace(/^IP Address:/, "IP:"))
    .filter((name) => /^(DNS|IP):/.test(name) && !["DNS:localhost", "IP:127.0.0.1"].includes(name))
    .map(normalizeSan);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: ".edgewise/certs" },
      san: { type: "string", multiple: true, default: [] },
      force: { type: "boolean", default: false },
      days: { type: "string", default: "90" },
    },
  });
  const dir = resolve(values.out);
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1)
    throw new EdgewiseError("config.invalid", "--days must be a positive integer");
  const given = values.san
    .flatMap((value) => value.split(","))
    .filter(Boolean)
    .map(normalizeSan);
  // A rotation without --san keeps the actor host's previous names, so a re-run never drops one silently.
  const extraSans = given.length > 0 ? given : previousSans(join(dir, "actor-host.pem"));
  const version = opensslVersion().split(" (")[0];

  const cas = Object.fromEntries(
    roles.map((role) => [role, keepOrMakeCa(dir, role, values.force)]),
  ) as Record<Role, { files: CertFiles; made: boolean }>;
  const leaf = (role: Role, usage: "serverAuth" | "clientAuth", sans: string[]) =>
    issueCert({
      cert: join(dir, `${role}.pem`),
      key: join(dir, `${role}.key`),
      ca: cas[role].files,
      commonName: `edgewise ${role}`,
      sans,
      usage: [usage],
      days,
    });
  const sans = [...new Set(["DNS:localhost", "IP:127.0.0.1", ...extraSans])];
  const actorHost = leaf("actor-host", "serverAuth", sans);
  const gateway = leaf("gateway", "clientAuth", ["DNS:gateway.edgewise.internal"]);
  const broker = leaf("broker", "clientAuth", ["DNS:broker.edgewise.internal"]);
  const clientsCa = join(dir, "actor-host-clients-ca.pem");
  writeFileAtomic(
    clientsCa,
    readFileSync(cas.gateway.files.cert, "utf8") + readFileSync(cas.broker.files.cert, "utf8"),
    0o644,
  );

  // Paths only: key material is never printed.
  const show = (path: string) => relative(process.cwd(), path) || path;
  const lines = [
    `Mutual TLS certificates in ${show(dir)} (${version})`,
    ...roles.map(
      (role) => `  ${role} CA: ${show(cas[role].files.cert)} (${cas[role].made ? "new" : "kept"})`,
    ),
    `  actor-host server cert: ${show(actorHost.cert)} (${days} days; SANs ${sans.join(", ")})`,
    `  gateway client cert:    ${show(gateway.cert)}`,
    `  broker client cert:     ${show(broker.cert)}`,
    `  actor host trusts:      ${show(clientsCa)} (gateway CA + broker CA)`,
    "",
    "Actor host:",
    `  TLS_CERT_FILE=${show(actorHost.cert)}`,
    `  TLS_KEY_FILE=${show(actorHost.key)}`,
    `  TLS_CA_FILE=${show(clientsCa)}`,
    "Gateway:",
    `  TLS_CERT_FILE=${show(gateway.cert)}`,
    `  TLS_KEY_FILE=${show(gateway.key)}`,
    `  TLS_CA_FILE=${show(cas["actor-host"].files.cert)}`,
    "  ACTOR_HOST_URL=https://127.0.0.1:<port>",
    "Broker (delivering to the actor host):",
    `  TLS_CERT_FILE=${show(broker.cert)}`,
    `  TLS_KEY_FILE=${show(broker.key)}`,
    `  TLS_CA_FILE=${show(cas["actor-host"].files.cert)}`,
    "",
    "Run this again to rotate the leaf certificates; running processes pick up the new files.",
  ];
  console.log(lines.join("\n"));
}

try {
  main();
} catch (error) {
  console.error(isEdgewiseError(error) ? error.message : error);
  process.exit(1);
}
