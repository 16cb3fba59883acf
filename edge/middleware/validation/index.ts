// validation: valibot schemas for bodies, params and queries; failures are problem+json with field paths.
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { Context, MiddlewareHandler, ValidationTargets } from "hono";
import { uniqueSymbol, validator } from "hono-openapi";
import { EdgewiseError, type FieldIssue } from "../../../shared/errors/index.ts";
import { issueMessage } from "../../../shared/errors/valibot.ts";
import { hasUnpairedSurrogate } from "../../../shared/text/index.ts";
import { duplicateMemberAt, refuseUnreadableBody } from "./json-body.ts";

/**
 * hono-openapi's validator, so the same schema both checks the request and documents it in /openapi.json.
 * Object schemas are strict: an unknown field is refused (400), never silently dropped, so a client's typo
 * (`quantiy`) fails loudly instead of taking a default.
 */
export function validate<Schema extends StandardSchemaV1, Target extends keyof ValidationTargets>(
  target: Target,
  schema: Schema,
) {
  // valibot's object schemas accept an array (`typeof [] === "object"`): a body of `[]` would pass as `{}`.
  const objectBody = target === "json" && /object$/.test(String((schema as { type?: unknown }).type));
  const checked = validator(
    target,
    target === "query" ? blankAsAbsent(schema) : schema,
    async (result, c) => {
      // A body must say it is JSON: without the header, the validator read it as `{}`, and defaults would apply
      // silently. Checked here rather than with the body's size, so that it comes after authentication.
      if (target === "json" && hasBody(c.req.raw) && !isJson(c.req.header("content-type")))
        throw new EdgewiseError("request.unsupported_media_type", "send the body as application/json");
      // An empty body (no JSON at all) was read as `{}` by the validator: only a parsed array is refused here,
      // whatever else is wrong with it (its "missing fields" would hide that it is not an object at all).
      if (objectBody && hasBody(c.req.raw) && Array.isArray(await c.req.json().catch(() => undefined))) {
        throw new EdgewiseError("request.invalid", "body is invalid (expected an object, not an array)", {
          issues: [{ path: "", message: "expected an object, not an array" }],
        });
      }
      if (result.success) return;
      const issues = result.error.map((issue) => ({
        path: (issue.path ?? [])
          .map((segment) => (typeof segment === "object" ? String(segment.key) : String(segment)))
          .join("."),
        message: issueMessage(issue),
      }));
      const first = issues[0];
      throw new EdgewiseError(
        "request.invalid",
        `${target === "json" ? "body" : target} is invalid${first ? ` (${first.path ? `${first.path}: ` : ""}${first.message})` : ""}`,
        { issues },
      );
    },
  );
  if (target !== "json" && target !== "query" && target !== "param") return checked;
  // Same middleware for /openapi.json (hono-openapi finds the validator by its symbol), after a strict read of
  // the body's UTF-8 or of the query's or the path's percent-encoding.
  const strict: MiddlewareHandler = async (c, next) => {
    if (target === "json") await decodeStrictly(c);
    else if (target === "query") checkQueryEncoding(c.req.url);
    else checkParamEncoding(c.req.url, c.req.routePath);
    return checked(c, next);
  };
  const openapi = (checked as unknown as Record<symbol, unknown>)[uniqueSymbol];
  return Object.assign(strict, {
    [uniqueSymbol]: openapi,
    [fieldNames]: Object.keys((schema as { entries?: object }).entries ?? {}),
  }) as unknown as typeof checked;
}

/** On a query's or a path's validator: the names its object schema takes (none for another schema). */
export const fieldNames = Symbol("fieldNames");

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * A JSON body must be UTF-8 (RFC 8259). `Request.json()` turns bytes that are not into U+FFFD and goes on, so a
 * garbled id (`\xff\xfe`) reached the routes as a different, valid one. The bytes are decoded strictly here and the
 * text is left in Hono's body cache, where the validator's `c.req.json()` parses it.
 */
async function decodeStrictly(c: Context): Promise<void> {
  const contentType = c.req.header("content-type");
  if (!hasBody(c.req.raw) || !isJson(contentType)) return;
  refuseUnreadableBody(c, contentType);
  const bytes = await c.req.arrayBuffer();
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new EdgewiseError("request.invalid", "body is not valid UTF-8", {
      issues: [{ path: "", message: "JSON must be sent as UTF-8" }],
    });
  }
  refuseUnpairedSurrogates(text);
  refuseDuplicateMembers(text);
  (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(text);
}

/**
 * Valid UTF-8 can still spell text that UTF-8 cannot hold: JSON's `\ud800` escape is half a surrogate pair. Read
 * as is, `{"customerId":"x\ud800"}` was accepted, and every store then wrote U+FFFD in its place, so it shared the
 * account, loyalty actor and orders of the customer `x\ufffd` (and a different one came back on each read path).
 * Only a body with such an escape is parsed here; one that is not JSON is left to the validator's own answer.
 */
function refuseUnpairedSurrogates(text: string): void {
  if (!/\\u[dD][89a-fA-F]/.test(text)) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return;
  }
  const path = unpairedSurrogateAt(body, []);
  if (path === undefined) return;
  const message = "must be well-formed Unicode (a \\u escape names half a surrogate pair)";
  throw new EdgewiseError("request.invalid", `body is invalid (${path ? `${path}: ` : ""}${message})`, {
    issues: [{ path, message }],
  });
}

/** A member named twice in one object is a 400 naming it: which of the two a reader keeps is not defined. */
function refuseDuplicateMembers(text: string): void {
  const path = duplicateMemberAt(text);
  // Only valid JSON is named so; text that is not is left to the validator's own answer.
  if (path === undefined || !parses(text)) return;
  const message = "is given more than once (a JSON object's member names must be unique)";
  throw new EdgewiseError("request.invalid", `body is invalid (${path}: ${message})`, {
    issues: [{ path, message }],
  });
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The dotted path of the first string or member name holding half a surrogate pair, if any. */
function unpairedSurrogateAt(value: unknown, path: string[]): string | undefined {
  if (typeof value === "string") return hasUnpairedSurrogate(value) ? path.join(".") : undefined;
  if (typeof value !== "object" || value === null) return undefined;
  for (const [name, member] of Object.entries(value)) {
    if (hasUnpairedSurrogate(name)) return [...path, name].join(".");
    const found = unpairedSurrogateAt(member, [...path, name]);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Every query parameter the API reads passes here, as each is read through `validate("query", …)`. Hono decodes
 * them leniently (`c.req.queries()` keeps the raw text of an escape it cannot decode), so `?q=%zz` searched for
 * "%zz" and `?q=%E0%A4%A` (a cut UTF-8 sequence) for its raw text: the client's request was garbled and got an
 * answer to another one. An escape that is not `%` and two hex digits, or bytes that are not UTF-8, are refused
 * here instead, naming the parameter. Checked on the URL as sent, before Hono decodes anything.
 */
function checkQueryEncoding(url: string): void {
  const start = url.indexOf("?");
  if (start === -1 || !url.includes("%", start)) return;
  const end = url.indexOf("#", start);
  const issues: FieldIssue[] = [];
  for (const pair of url.slice(start + 1, end === -1 ? undefined : end).split("&")) {
    if (!pair.includes("%")) continue;
    const equals = pair.indexOf("=");
    const rawName = equals === -1 ? pair : pair.slice(0, equals);
    const name = decoded(rawName);
    if (name !== undefined && (equals === -1 || decoded(pair.slice(equals + 1)) !== undefined)) continue;
    issues.push({ path: name ?? rawName, message: malformedEncoding });
  }
  refuseMalformed("query", issues);
}

/**
 * The same for path parameters, which every route reads through `validate("param", …)`. Hono decodes them with the
 * same lenient fallback, so `PUT /v1/accounts/%FF` set the balance of a customer named "%FF" (the one
 * `/v1/accounts/%25FF` names), and `%E0%A4%A` or `%zz` opened accounts under their raw text. Each segment of the
 * path as sent is checked; a bad one is named by the route's parameter in the same place (`/v1/accounts/:customerId`).
 * An encoded `/` (`%2F`) is well-formed: it stays inside its parameter, and the parameter's schema decides.
 */
function checkParamEncoding(url: string, routePath: string): void {
  const start = url.charCodeAt(0) === 47 ? 0 : url.indexOf("/", url.indexOf(":") + 3);
  const end = url.search(/[?#]/);
  const path = url.slice(start, end === -1 ? undefined : end);
  if (!path.includes("%")) return;
  const segments = path.split("/");
  const pattern = routePath.split("/");
  const issues: FieldIssue[] = [];
  segments.forEach((segment, at) => {
    if (!segment.includes("%") || decoded(segment) !== undefined) return;
    // `:name`, `:name?` or `:name{regex}`; a wildcard (`*`) would shift the segments, so then the whole path is named.
    const name = !routePath.includes("*") && /^:([^{?]+)/.exec(pattern[at] ?? "")?.[1];
    issues.push({ path: name || "path", message: malformedEncoding });
  });
  refuseMalformed("param", issues);
}

const malformedEncoding = "is not valid percent-encoding (%XX escapes of UTF-8 bytes)";

/** A 400 naming each parameter of `target` that is not valid percent-encoding, as the validator names its issues. */
function refuseMalformed(target: "query" | "param", issues: FieldIssue[]): void {
  const first = issues[0];
  if (first) {
    throw new EdgewiseError("request.invalid", `${target} is invalid (${first.path}: ${first.message})`, {
      issues,
    });
  }
}

/** The text percent-decoded, or undefined where it is not valid percent-encoded UTF-8. */
function decoded(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * A query parameter sent empty (`?status=&cursor=`, as a client fills API.md's `?customerId=&status=…` template
 * with the filters it does not use) means the same as one left out. The schema stays the one /openapi.json
 * documents (its own properties, through the prototype); only what it validates loses the empty values.
 */
function blankAsAbsent<Schema extends StandardSchemaV1>(schema: Schema): Schema {
  const standard = schema["~standard"];
  // Only the schema's own parameters: an unknown one, empty or not, is still refused.
  const known = new Set(Object.keys((schema as { entries?: object }).entries ?? {}));
  const validate = (value: unknown) =>
    standard.validate(
      typeof value === "object" && value !== null && !Array.isArray(value)
        ? Object.fromEntries(
            Object.entries(value).filter(([name, given]) => given !== "" || !known.has(name)),
          )
        : value,
    );
  return Object.create(schema, { "~standard": { value: { ...standard, validate }, enumerable: true } });
}

function hasBody(request: Request): boolean {
  return request.headers.get("content-length") !== "0" && request.body !== null;
}

/** `application/json` or any `+json` type, parameters aside. */
function isJson(contentType: string | undefined): boolean {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  return type !== undefined && (type === "application/json" || type.endsWith("+json"));
}
