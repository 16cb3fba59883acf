// `--help` (or `-h`) for the npm scripts: prints what a command takes and exits 0, before it reads or starts anything.
import process from "node:process";

/** Whether the command line asks for help: `npm run <script> -- --help`. */
export function helpAsked(args: readonly string[] = process.argv.slice(2)): boolean {
  return args.includes("--help") || args.includes("-h");
}

/**
 * Prints `lines` on stdout and exits 0 when help is asked for; otherwise returns. Called first, since the scripts
 * that serve (a node, the broker, the bridge) would otherwise take `--help` for nothing and start listening.
 */
export function exitWithHelp(
  lines: readonly string[],
  args: readonly string[] = process.argv.slice(2),
): void {
  if (!helpAsked(args)) return;
  console.log(lines.join("\n"));
  process.exit(0);
}

/** What `npm start -- --help` (and `npm run start:deno -- --help`) prints: a node takes no arguments, only variables. */
export const nodeHelp = (script: "start" | "run start:deno"): string[] => [
  `usage: npm ${script}`,
  "One Edgewise node: the actors, the gateway and, unless QSTASH_URL is set, an embedded QStash-compatible broker,",
  'configured from the environment only (README.md, "Configuration", lists every variable and its default), e.g.',
  "  PORT (8787), HOST (0.0.0.0), EDGEWISE_DATA_DIR (./.edgewise), DATABASE_URL (else PGlite in the data dir),",
  "  JWT_SECRET (else a key generated into the data dir, and an admin token printed), LOG_LEVEL (info)",
  "A bad value stops it with exit code 78, naming the variable; SIGTERM or SIGINT drains it and exits 0.",
];
