// Turning a REST request's command into Redis arguments: JSON checks, commands the bridge refuses, script shims.
import { type Arg, type Reply, SimpleString } from "./resp.ts";
import type { ScriptShim } from "./scripts.ts";

/** A request the bridge cannot run at all: answered with this status and `{"error": message}`. */
export class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A command ready for Redis, with an optional fix-up of its reply. */
export interface Prepared {
  args: Arg[];
  mapReply?: (reply: Reply) => Reply;
}

/** A command the bridge will not send; the other commands of a pipeline still run. */
export interface Refused {
  refused: string;
}

/** They would block the one shared connection (Upstash's REST API refuses them as well). */
const BLOCKING = new Set(
  "BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN BZPOPMAX BZMPOP WAIT WAITAOF".split(" "),
);

/** They change or take over the connection's state, which every request shares. */
const CONNECTION_STATE = new Set(
  [
    "MULTI EXEC DISCARD WATCH UNWATCH",
    "SELECT AUTH HELLO QUIT RESET CLIENT",
    "SUBSCRIBE PSUBSCRIBE SSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE SUNSUBSCRIBE MONITOR",
    "SYNC PSYNC REPLCONF",
  ]
    .join(" ")
    .split(" "),
);

/** A JSON command (`["SET", "k", "v"]`): strings as given, numbers and booleans as their text. */
export function parseJsonCommand(value: unknown, where = "command"): Arg[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BadRequest(`ERR ${where} must be a non-empty JSON array`);
  }
  return value.map((item, i) => {
    if (typeof item === "string") return item;
    if (typeof item === "number" && Number.isFinite(item)) return String(item);
    if (typeof item === "boolean") return String(item);
    throw new BadRequest(`ERR ${where} argument ${i} must be a string, number or boolean`);
  });
}

const text = (arg: Arg | undefined): string =>
  arg === undefined ? "" : typeof arg === "string" ? arg : Buffer.from(arg).toString("utf8");

/** XREAD and XREADGROUP block only with a BLOCK option, which comes before STREAMS. */
function blocksOnStreams(args: Arg[]): boolean {
  for (let i = 1; i < args.length; i++) {
    const word = text(args[i]).toUpperCase();
    if (word === "STREAMS") return false;
    if (word === "BLOCK") return true;
  }
  return false;
}

export function prepare(args: Arg[], scripts: ScriptShim): Prepared | Refused {
  const name = text(args[0]).toUpperCase();
  if (BLOCKING.has(name) || ((name === "XREAD" || name === "XREADGROUP") && blocksOnStreams(args))) {
    return { refused: `ERR blocking command ${name} is not supported over REST` };
  }
  if (CONNECTION_STATE.has(name)) {
    const hint = name === "MULTI" || name === "EXEC" ? "; send the commands to /multi-exec" : "";
    return { refused: `ERR command ${name} is not supported over REST${hint}` };
  }
  const sub = text(args[1]).toUpperCase();
  const script = args[1];
  if ((name === "EVAL" || name === "EVAL_RO") && typeof script === "string") {
    const rewritten = scripts.rewrite(script);
    if (rewritten) return { args: [args[0] as Arg, rewritten.script, ...args.slice(2)] };
  }
  if ((name === "EVALSHA" || name === "EVALSHA_RO") && args[1] !== undefined) {
    return { args: [args[0] as Arg, scripts.translate(text(args[1])), ...args.slice(2)] };
  }
  if (name === "SCRIPT" && sub === "LOAD" && typeof args[2] === "string" && args.length === 3) {
    const rewritten = scripts.rewrite(args[2]);
    if (rewritten) {
      // Answer with the hash of the script the client sent, which is the one it will use with EVALSHA.
      const mapReply = (reply: Reply): Reply =>
        reply instanceof Uint8Array ? Buffer.from(rewritten.clientSha) : reply;
      return { args: [args[0] as Arg, args[1] as Arg, rewritten.script], mapReply };
    }
  }
  if (name === "SCRIPT" && sub === "EXISTS") {
    return { args: [...args.slice(0, 2), ...args.slice(2).map((sha) => scripts.translate(text(sha)))] };
  }
  return { args };
}

export const isRefused = (prepared: Prepared | Refused): prepared is Refused => "refused" in prepared;

/** `+QUEUED`, the reply to a command accepted into a transaction. */
export const isQueued = (reply: Reply | undefined): boolean =>
  reply instanceof SimpleString && reply.text === "QUEUED";
