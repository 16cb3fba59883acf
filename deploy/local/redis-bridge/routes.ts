// The bridge's HTTP surface: Upstash's REST routes (/, /pipeline, /multi-exec, /<cmd>/<arg>…) and bearer auth.
import { createHash, timingSafeEqual } from "node:crypto";
import { BadRequest, isQueued, isRefused, type Prepared, parseJsonCommand, prepare } from "./commands.ts";
import { type RedisLink, RedisUnavailable } from "./connection.ts";
import { type Outcome, outcome } from "./reply.ts";
import { type Arg, ErrorReply, type Reply } from "./resp.ts";
import type { ScriptShim } from "./scripts.ts";
import { readBoundedBody } from "../../../shared/net/body.ts";

export interface BridgeContext {
  token: string;
  /** During a rotation: the token being replaced, accepted beside `token` (UPSTASH_REDIS_REST_PREVIOUS_TOKEN). */
  previousToken?: string | undefined;
  link: RedisLink;
  scripts: ScriptShim;
  log: (message: string) => void;
  /** Largest request body, in bytes. */
  maxBodyBytes: number;
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT"]); // the ones Upstash's REST API allows

const json = (value: unknown, status = 200): Response =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();

/**
 * The body, up to `max` bytes. Past it, Upstash's error as JSON (413): Bun's own limit answers with an empty body,
 * which @upstash/redis can only report as UpstashJSONParseError. A declared length is refused before reading.
 */
const readBody = (req: Request, max: number): Promise<Uint8Array> =>
  readBoundedBody(req, max, () => new BadRequest(`ERR max request size exceeded. Limit: ${max} bytes`, 413));

async function readJson(req: Request, max: number): Promise<unknown> {
  const body = Buffer.from(await readBody(req, max)).toString("utf8");
  if (body.trim() === "") throw new BadRequest("ERR empty request body: expected a JSON array");
  try {
    return JSON.parse(body);
  } catch {
    throw new BadRequest("ERR request body is not valid JSON");
  }
}

function parseBatch(value: unknown): Arg[][] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BadRequest("ERR body must be a non-empty JSON array of commands");
  }
  return value.map((command, i) => parseJsonCommand(command, `command ${i}`));
}

/** `/set/foo/bar?EX=100`: path segments, then a POST/PUT body as the last value, then query pairs. */
async function pathCommand(req: Request, url: URL, max: number): Promise<Arg[]> {
  const args: Arg[] = [];
  try {
    for (const segment of url.pathname.split("/")) if (segment !== "") args.push(decodeURIComponent(segment));
  } catch {
    throw new BadRequest("ERR malformed percent-encoding in the path");
  }
  if (req.method === "POST" || req.method === "PUT") {
    const body = await readBody(req, max);
    if (body.byteLength > 0) args.push(body);
  }
  for (const [name, value] of url.searchParams) {
    if (name === "_token") continue;
    args.push(name);
    if (value !== "") args.push(value);
  }
  return args;
}

const fix = (prepared: Prepared, reply: Reply): Reply =>
  prepared.mapReply ? prepared.mapReply(reply) : reply;

async function single(ctx: BridgeContext, args: Arg[], base64: boolean): Promise<Response> {
  const prepared = prepare(args, ctx.scripts);
  if (isRefused(prepared)) return json({ error: prepared.refused }, 400);
  const [reply = null] = await ctx.link.send([prepared.args]);
  const result = outcome(fix(prepared, reply), base64);
  return json(result, "error" in result ? 400 : 200);
}

/** In order, not atomic: a refused command gets its `{error}` and the others still run. */
async function pipeline(ctx: BridgeContext, commands: Arg[][], base64: boolean): Promise<Response> {
  const prepared = commands.map((args) => prepare(args, ctx.scripts));
  const runnable = prepared.filter((p): p is Prepared => !isRefused(p));
  const replies = await ctx.link.send(runnable.map((p) => p.args));
  let next = 0;
  const results: Outcome[] = prepared.map((p) =>
    isRefused(p) ? { error: p.refused } : outcome(fix(p, replies[next++] ?? null), base64),
  );
  return json(results);
}

/**
 * MULTI, the commands and EXEC go out as one write on the shared connection, so no other request's command can
 * be queued into this transaction, and EXEC runs it atomically with respect to every other Redis client.
 * A transaction discarded as a whole is one `{error}` (400), as Upstash documents.
 */
async function transaction(ctx: BridgeContext, commands: Arg[][], base64: boolean): Promise<Response> {
  const prepared: Prepared[] = [];
  for (const args of commands) {
    const p = prepare(args, ctx.scripts);
    if (isRefused(p)) return json({ error: p.refused }, 400);
    prepared.push(p);
  }
  const replies = await ctx.link.send([["MULTI"], ...prepared.map((p) => p.args), ["EXEC"]]);
  const [multi, ...rest] = replies;
  const exec = rest.pop();
  if (multi instanceof ErrorReply) throw new Error(`MULTI failed: ${multi.message}`);
  // Redis answers EXECABORT after a queueing error; the queueing error says what was wrong.
  const rejected = rest.find((reply) => !isQueued(reply));
  if (rejected instanceof ErrorReply) return json({ error: rejected.message }, 400);
  if (exec instanceof ErrorReply) return json({ error: exec.message }, 400);
  if (!Array.isArray(exec)) return json({ error: "EXECABORT Transaction discarded" }, 400);
  return json(exec.map((reply, i) => outcome(prepared[i] ? fix(prepared[i], reply) : reply, base64)));
}

async function route(req: Request, url: URL, ctx: BridgeContext): Promise<Response> {
  const format = req.headers.get("upstash-response-format")?.toLowerCase();
  if (format !== undefined && format !== "json") {
    throw new BadRequest(
      format === "resp2"
        ? "ERR Upstash-Response-Format resp2 is not supported by the redis-bridge"
        : "ERR Upstash-Response-Format must be json or resp2",
    );
  }
  const base64 = req.headers.get("upstash-encoding")?.trim().toLowerCase() === "base64";
  // Trailing slashes cut by hand: `/\/+$/` backtracks quadratically on a path of many slashes.
  let end = url.pathname.length;
  while (end > 0 && url.pathname.charCodeAt(end - 1) === 47) end--;
  const path = url.pathname.slice(0, end) || "/";
  if (path === "/pipeline" || path === "/multi-exec") {
    if (req.method !== "POST" && req.method !== "PUT") throw new BadRequest("Method Not Allowed", 405);
    const commands = parseBatch(await readJson(req, ctx.maxBodyBytes));
    return path === "/pipeline" ? pipeline(ctx, commands, base64) : transaction(ctx, commands, base64);
  }
  const args =
    path === "/"
      ? parseJsonCommand(await readJson(req, ctx.maxBodyBytes))
      : await pathCommand(req, url, ctx.maxBodyBytes);
  return single(ctx, args, base64);
}

/**
 * A request's route as its log line names it: `/`, `/pipeline`, `/multi-exec`, or a path command's name alone
 * (`/set/…`). The rest of a path is the command's arguments, keys and values that may be a session's token or a
 * password, which no token shape would recognize.
 */
function routeOf(pathname: string): string {
  const [, name = "", ...rest] = pathname.split("/");
  if (rest.length === 0 || name === "pipeline" || name === "multi-exec") return `/${name.slice(0, 64)}`;
  return `/${name.slice(0, 64)}/…`;
}

/** The fetch handler: method, then token (`Authorization: Bearer` or `?_token=`), then the route. */
export function createHandler(ctx: BridgeContext): (req: Request) => Promise<Response> {
  const expected = [ctx.token, ...(ctx.previousToken ? [ctx.previousToken] : [])].map(digest);
  const authorized = (req: Request, url: URL): boolean => {
    const header = req.headers.get("authorization");
    const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
    const given = header === null ? url.searchParams.get("_token") : bearer;
    if (given === undefined || given === null) return false;
    // Comparing SHA-256 digests keeps the comparison constant-time and the token's length private; each accepted
    // token is compared, whichever matches.
    const sent = digest(given);
    return expected.map((token) => timingSafeEqual(sent, token)).includes(true);
  };
  return async (req) => {
    try {
      if (!METHODS.has(req.method)) return json({ error: "Method Not Allowed" }, 405);
      const url = new URL(req.url);
      // Upstash's answer, word for word: clients tell an auth failure apart by its WRONGPASS code.
      if (!authorized(req, url)) return json({ error: "WRONGPASS invalid or missing auth token" }, 401);
      return await route(req, url, ctx);
    } catch (error) {
      if (error instanceof BadRequest) return json({ error: error.message }, error.status);
      // 503, as Upstash answers while it cannot serve: Redis may answer again, and the next request reconnects.
      // Not a failure of the bridge: the link reports the outage once, not as each request's error.
      if (error instanceof RedisUnavailable) return json({ error: `ERR ${error.message}` }, 503);
      const message = error instanceof Error ? error.message : String(error);
      ctx.log(`${req.method} ${routeOf(new URL(req.url).pathname)}: ${message}`);
      return json({ error: `ERR ${message}` }, 500);
    }
  };
}
