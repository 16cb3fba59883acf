// Maps valibot issues onto the error model's field issues, in words a client's developer reads at a glance.
import type { BaseIssue } from "valibot";
import { getDotPath } from "valibot";
import { EdgewiseError, type ErrorCode, type FieldIssue } from "./index.ts";

export function fieldIssues(issues: readonly BaseIssue<unknown>[]): FieldIssue[] {
  return issues.map((issue) => ({ path: getDotPath(issue) ?? "", message: issueMessage(issue) }));
}

export function validationError(
  code: ErrorCode,
  what: string,
  issues: readonly BaseIssue<unknown>[],
): EdgewiseError {
  const fields = fieldIssues(issues);
  const first = fields[0];
  const where = first ? `${first.path ? `${first.path}: ` : ""}${first.message}` : "invalid";
  return new EdgewiseError(code, `${what} is invalid (${where})`, { issues: fields });
}

/** A kind of JSON value in words, by valibot's name for it (`Object`, `number`) or `typeof`'s. */
const kinds: Record<string, string> = {
  number: "a number",
  string: "a string",
  boolean: "true or false",
  object: "an object",
  array: "an array",
  null: "null",
};
const kindWords = (name: string) => kinds[name.toLowerCase()] ?? name;

/** What a valibot issue says, as it reaches a Standard Schema consumer too (hono-openapi's validator hook). */
export interface IssueLike {
  message: string;
  expected?: string | null;
  received?: string;
  input?: unknown;
}

/**
 * Valibot's default messages name its internals ("Invalid key: Expected never but received \"foo\""). A schema's
 * own message (`"must be 1 to 100"`) is kept; the defaults for a missing field, an unknown one and a wrong type are
 * said plainly. A wrong type names what was received only as a kind, never the value.
 */
export function issueMessage(issue: IssueLike): string {
  const { message, expected, received } = issue;
  if (message.startsWith("Invalid key: ")) {
    if (expected === "never") return "is not a field here (unknown fields are refused)";
    if (received === "undefined") return "is required";
  }
  // A bound: "Invalid value: Expected <=1000000000 but received 1e+300", "Invalid length: Expected >=1 …".
  const bound = /^Invalid (value|length): /.exec(message) && /^([<>]=?)(.+)$/.exec(expected ?? "");
  if (bound) {
    const [, op, limit] = bound;
    const words = { "<=": "at most", ">=": "at least", "<": "less than", ">": "more than" }[op as string];
    return message.startsWith("Invalid length: ")
      ? `length must be ${words} ${limit}`
      : `must be ${words} ${limit}`;
  }
  if (message.startsWith("Invalid type: ") && typeof expected === "string") {
    const got = received === "Array" ? "an array (a repeated query parameter?)" : kindOf(issue.input);
    if (received === "undefined") return `is required (${kindWords(expected)})`;
    return `must be ${kindWords(expected)}, not ${got}`;
  }
  return message;
}

function kindOf(input: unknown): string {
  return kindWords(input === null ? "null" : Array.isArray(input) ? "array" : typeof input);
}
