// withTimeout cases, on real timers: the deadline aborts the work, a parent's abort passes through, timers clear.
import type { EdgewiseError } from "../../../shared/errors/index.ts";
import { sleep, withTimeout } from "../../../shared/resilience/index.ts";
import { assert, type Case, codeOf, equal, rejection } from "../check.ts";

/** Work that only ends when its signal aborts, and remembers the reason it saw. */
function untilAborted(seen: { reason?: unknown }) {
  return (signal: AbortSignal) =>
    new Promise<never>((_, reject) => {
      signal.addEventListener("abort", () => {
        seen.reason = signal.reason;
        reject(signal.reason);
      });
    });
}

const pause = (ms: number) => sleep(ms, new AbortController().signal);

export const timeoutCases: Case[] = [
  {
    name: "the deadline aborts the work's signal and rejects with timeout (504)",
    async run() {
      const seen: { reason?: unknown } = {};
      const error = (await rejection(withTimeout(untilAborted(seen), 20), "withTimeout")) as EdgewiseError;
      equal([codeOf(error), error.status, error.public], ["timeout", 504, true], "error");
      assert(seen.reason === error, "the work saw the same timeout error as its abort reason");
    },
  },
  {
    name: "it settles at the deadline even when the work ignores its signal",
    async run() {
      let signal: AbortSignal | undefined;
      const error = await rejection(
        withTimeout((given) => {
          signal = given;
          return new Promise<never>(() => {});
        }, 20),
        "withTimeout",
      );
      equal(codeOf(error), "timeout", "code");
      equal(signal?.aborted, true, "the ignored signal still aborted");
    },
  },
  {
    name: "a parent's abort reaches the work with the parent's reason, not timeout",
    async run() {
      const parent = new AbortController();
      const seen: { reason?: unknown } = {};
      const pending = withTimeout(untilAborted(seen), 10_000, parent.signal);
      parent.abort(new Error("client went away"));
      const error = (await rejection(pending, "withTimeout")) as Error;
      equal([error.message, codeOf(error)], ["client went away", undefined], "reason");
      assert(seen.reason === error, "the work saw the parent's reason");
      let called = false;
      await rejection(
        withTimeout(
          async () => {
            called = true;
          },
          10_000,
          parent.signal,
        ),
        "already aborted",
      );
      equal(called, false, "an already-aborted parent never starts the work");
    },
  },
  {
    name: "work that finishes in time resolves, and its timer is cleared",
    async run() {
      let signal: AbortSignal | undefined;
      const value = await withTimeout(async (given) => {
        signal = given;
        return 42;
      }, 20);
      equal(value, 42, "value");
      await pause(40);
      equal(signal?.aborted, false, "no abort after the deadline passed");
    },
  },
  {
    name: "a synchronous throw becomes a rejection; a bad deadline is config.invalid",
    async run() {
      const thrown = await rejection(
        withTimeout(() => {
          throw new Error("sync");
        }, 20),
        "sync throw",
      );
      equal((thrown as Error).message, "sync", "sync throw");
      equal(
        codeOf(
          await rejection(
            withTimeout(async () => 1, Number.NaN),
            "NaN",
          ),
        ),
        "config.invalid",
        "NaN",
      );
    },
  },
];
