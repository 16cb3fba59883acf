// Maps valibot issues onto the error model's field issues.
import type { BaseIssue } from "valibot";
import { getDotPath } from "valibot";
import { EdgewiseError, type ErrorCode, type FieldIssue } from "./index.ts";

export function fieldIssues(issues: readonly BaseIssue<unknown>[]): FieldIssue[] {
  return issues.map((issue) => ({ path: getDotPath(issue) ?? "", message: issue.message }));
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
