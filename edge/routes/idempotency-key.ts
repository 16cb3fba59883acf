// The Idempotency-Key header's rule, one for every route that takes it (orders, the demo counters).
import { EdgewiseError } from "../../shared/errors/index.ts";

const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;

/** The header as /openapi.json documents it: the same rule, so a client held to the document sends no key refused. */
export const idempotencyKeySchema = {
  type: "string" as const,
  minLength: 1,
  maxLength: 255,
  pattern: idempotencyKeyPattern.source,
};

/**
 * The header's value, checked: 1-255 visible ASCII characters, else `request.invalid` (400); undefined when absent.
 * What a route derives from it is stored (an order's id, a message id kept in the actor's inbox for the retention
 * window), so its length is bounded here rather than by the runtime's header limit (16 KB on Bun).
 */
export function idempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!idempotencyKeyPattern.test(header)) {
    throw new EdgewiseError("request.invalid", "Idempotency-Key must be 1-255 visible ASCII characters");
  }
  return header;
}
