// Tests' view of the error model: what a promise was rejected with, checked to be an EdgewiseError.
import { expect } from "bun:test";
import { EdgewiseError } from "../../shared/errors/index.ts";

/** Awaits `promise`, expects it to reject with an EdgewiseError, and returns that error for its code and message. */
export async function edgewiseRejection(promise: Promise<unknown>): Promise<EdgewiseError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(EdgewiseError);
  return error as EdgewiseError;
}
