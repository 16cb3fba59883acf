// CLI: `npm run certs [-- --out <dir>] [--san <SAN>]... [--broker-san <SAN>]... [--days N] [--force]` makes the TLS
// certificates of a split deployment (mutual TLS to actor hosts, HTTPS to the broker's API); `npm run certs --
// rotate-ca [--role <role>]...` and `npm run certs -- retire-old-ca` rotate the role CAs without downtime (roles.ts;
// the procedure is in SECURITY.md, "Rotating a role CA").
//
// Existing CAs are kept unless --force; leaf certificates are reissued on every run, so re-running rotates them
// (running processes follow the files).
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { exitWithHelp } from "../../cli-help.ts";
import { EdgewiseError, isEdgewiseError } from "../../../shared/errors/index.ts";
import { normalizeSan, opensslVersion } from "./openssl.ts";
import {
  caFiles,
  issueLeaves,
  keepOrMakeCa,
  localSans,
  previousCaFile,
  previousSans,
  type Role,
  retireOldCas,
  roles,
  rotateCas,
  trustBundles,
  writeTrustBundles,
} from "./roles.ts";

const show = (path: string) => relative(process.cwd(), path) || path;
const subject = (path: string) => {
  const cert = new X509Certificate(readFileSync(path));
  return `${cert.subject.replace(/^CN=/, "")}, serial ${cert.serialNumber}`;
};

/** What each trust bundle holds now, one line each. */
function bundleLines(dir: string): string[] {
  return Object.entries(trustBundles).map(([name, trusted]) => {
    const held = trusted.map((role: Role) =>
      [`${role} CA`, ...(previousTrusted(dir, role) ? [`the previous ${role} CA`] : [])].join(" + "),
    );
    return `  ${show(join(dir, name))}: ${held.join(" + ")}`;
  });
}

const previousTrusted = (dir: string, role: Role) => existsSync(previousCaFile(dir, role));

/**
 * A server certificate's SANs: the local ones, and those given, or else those its previous certificate had, so that a
 * rotation without --san (--broker-san) never drops a name silently.
 */
function serverSans(dir: string, leaf: "actor-host" | "broker-server", given: string[]): string[] {
  const named = given
    .flatMap((value) => value.split(","))
    .filter(Boolean)
    .map(normalizeSan);
  return [...new Set([...localSans, ...(named.length > 0 ? named : previousSans(dir, leaf))])];
}

/** The default command: CAs kept (or made), every leaf reissued, the bundles written. */
function issue(
  dir: string,
  values: { san: string[]; "broker-san": string[]; force: boolean; days: string },
): string[] {
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1)
    throw new EdgewiseError("config.invalid", "--days must be a positive integer");
  const sans = {
    "actor-host": serverSans(dir, "actor-host", values.san),
    "broker-server": serverSans(dir, "broker-server", values["broker-san"]),
  };
  const version = opensslVersion().split(" (")[0];
  const made = new Set(roles.filter((role) => keepOrMakeCa(dir, role, values.force).made));
  const leaves = issueLeaves(dir, { sans, days });
  writeTrustBundles(dir);
  const clients = join(dir, "actor-host-clients-ca.pem");
  const servers = join(dir, "actor-host-ca-bundle.pem");
  const brokers = join(dir, "broker-ca-bundle.pem");
  const rotating = roles.filter((role) => previousTrusted(dir, role));
  return [
    `TLS certificates in ${show(dir)} (${version})`,
    ...roles.map(
      (role) => `  ${role} CA: ${show(caFiles(dir, role).cert)} (${made.has(role) ? "new" : "kept"})`,
    ),
    `  actor-host server cert: ${show(leaves["actor-host"].cert)} (${days} days; SANs ${sans["actor-host"].join(", ")})`,
    `  gateway client cert:    ${show(leaves.gateway.cert)}`,
    `  broker client cert:     ${show(leaves.broker.cert)}`,
    `  broker server cert:     ${show(leaves["broker-server"].cert)} (SANs ${sans["broker-server"].join(", ")})`,
    "Trust bundles:",
    ...bundleLines(dir),
    "",
    "Actor host:",
    `  TLS_CERT_FILE=${show(leaves["actor-host"].cert)}`,
    `  TLS_KEY_FILE=${show(leaves["actor-host"].key)}`,
    `  TLS_CA_FILE=${show(clients)}`,
    "Gateway:",
    `  TLS_CERT_FILE=${show(leaves.gateway.cert)}`,
    `  TLS_KEY_FILE=${show(leaves.gateway.key)}`,
    `  TLS_CA_FILE=${show(servers)}`,
    "  ACTOR_HOST_URL=https://127.0.0.1:<port>",
    "Broker (delivering to the actor host, and serving its API over https):",
    `  TLS_CERT_FILE=${show(leaves.broker.cert)}`,
    `  TLS_KEY_FILE=${show(leaves.broker.key)}`,
    `  TLS_CA_FILE=${show(servers)}`,
    `  QSTASH_TLS_CERT_FILE=${show(leaves["broker-server"].cert)}`,
    `  QSTASH_TLS_KEY_FILE=${show(leaves["broker-server"].key)}`,
    "Actor host and gateway (publishing to the broker):",
    `  QSTASH_CA_FILE=${show(brokers)}`,
    "  QSTASH_URL=https://127.0.0.1:<broker port>",
    "",
    "Run this again to rotate the leaf certificates; running processes pick up the new files.",
    ...(values.force
      ? [
          "--force made new CAs: processes that still trust the old ones refuse the new certificates until they",
          "reload the new bundles. To replace the CAs of a running deployment, use rotate-ca (SECURITY.md).",
        ]
      : []),
    ...(rotating.length > 0
      ? [
          `A CA rotation is under way (${rotating.join(", ")}): these leaves are from the new CAs. Roll them out,`,
          "then run: npm run certs -- retire-old-ca",
        ]
      : []),
  ];
}

function rotate(dir: string, given: string[]): string[] {
  for (const role of given) {
    if (!(roles as readonly string[]).includes(role))
      throw new EdgewiseError("config.invalid", `--role must be one of ${roles.join(", ")} (got ${role})`);
  }
  const rotating = given.length > 0 ? [...new Set(given as Role[])] : [...roles];
  const rotated = rotateCas(dir, rotating);
  return [
    `Rotating the ${rotating.join(", ")} CA${rotating.length > 1 ? "s" : ""} in ${show(dir)}: step 1 of 3 done`,
    ...rotated.map(
      (ca) =>
        `  ${ca.role} CA: new ${show(ca.cert)} (${subject(ca.cert)}); the old one is kept in ${show(ca.previous)}`,
    ),
    "Trust bundles (old and new trusted alike):",
    ...bundleLines(dir),
    "The leaf certificates are unchanged, still from the old CAs.",
    "",
    "Next:",
    "  1. Give every process its new trust bundles (the files its TLS_CA_FILE and QSTASH_CA_FILE name) and wait",
    '     until each has logged "tls: certificate files applied" (and "tls: broker CA applied") trusting the new CA,',
    "     or restart them one at a time.",
    "  2. npm run certs: reissues the leaves from the new CAs. Roll them out the same way.",
    "  3. npm run certs -- retire-old-ca: drops the old CAs from the bundles. Roll the bundles out.",
  ];
}

function retire(dir: string): string[] {
  const retired = retireOldCas(dir);
  if (retired.length === 0) return [`No CA rotation under way in ${show(dir)}: nothing to retire.`];
  return [
    `Retired the previous ${retired.join(", ")} CA${retired.length > 1 ? "s" : ""} in ${show(dir)}: step 3 of 3 done`,
    "Trust bundles:",
    ...bundleLines(dir),
    "Give every process its new trust bundle; once each has applied it, the old CAs are trusted nowhere.",
  ];
}

/** What `npm run certs -- --help` prints. */
const help = [
  "usage: npm run certs -- [--out <dir>] [--san <name>]... [--broker-san <name>]... [--days <n>] [--force]",
  "       npm run certs -- rotate-ca [--role gateway|actor-host|broker]... [--out <dir>]",
  "       npm run certs -- retire-old-ca [--out <dir>]",
  "Development certificates for a split deployment over mutual TLS, in --out (.edgewise/certs): one CA per role",
  "(gateway, actor-host, broker), kept when present (--force makes new ones), and every leaf reissued, valid for",
  "--days (90). --san adds a name to the actor host's certificate, --broker-san to the broker's server certificate",
  "(both always name localhost and 127.0.0.1). rotate-ca, then a plain run, then retire-old-ca replace a role CA",
  'without downtime (SECURITY.md, "Rotating a role CA"). Runs the openssl CLI, or the one OPENSSL names.',
];

function main(): void {
  exitWithHelp(help);
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: "string", default: ".edgewise/certs" },
      san: { type: "string", multiple: true, default: [] },
      "broker-san": { type: "string", multiple: true, default: [] },
      force: { type: "boolean", default: false },
      days: { type: "string", default: "90" },
      role: { type: "string", multiple: true, default: [] },
    },
  });
  const dir = resolve(values.out);
  const [command = "issue", ...rest] = positionals;
  if (rest.length > 0) throw new EdgewiseError("config.invalid", `unexpected arguments: ${rest.join(" ")}`);
  // Paths and serials only: key material is never printed.
  const lines =
    command === "issue"
      ? issue(dir, values)
      : command === "rotate-ca"
        ? rotate(dir, values.role)
        : command === "retire-old-ca"
          ? retire(dir)
          : undefined;
  if (!lines) {
    throw new EdgewiseError(
      "config.invalid",
      `unknown command ${JSON.stringify(command)}: use no command (issue), rotate-ca or retire-old-ca`,
    );
  }
  console.log(lines.join("\n"));
}

try {
  main();
} catch (error) {
  console.error(isEdgewiseError(error) ? error.message : error);
  process.exit(1);
}
