// An instant when PGlite runs nothing and holds no open transaction: where an online backup copies its files.
import type { PGlite } from "@electric-sql/pglite";
import { EdgewiseError } from "../../../shared/errors/index.ts";

/**
 * Holds a connection's next statements while a snapshot waits, but only between transactions: a transaction under
 * way runs on to its end (holding it would hold the snapshot too), then its connection waits with the rest.
 */
export class PGliteGate {
  private opened: Promise<void> | undefined;
  private open: (() => void) | undefined;

  /** Undefined while open; else settles when the gate opens. */
  get held(): Promise<void> | undefined {
    return this.opened;
  }

  close(): void {
    this.opened ??= new Promise<void>((resolve) => {
      this.open = resolve;
    });
  }

  reopen(): void {
    this.open?.();
    this.opened = undefined;
    this.open = undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Closes `gate`, waits (up to `withinMs`) for an instant when PGlite runs no statement and no transaction is open,
 * and runs `take` there, synchronously, while it holds PGlite's query lock: nothing of this process writes
 * PGlite's files, nor (`take` being synchronous) anything else, until it returns. Then the gate opens again,
 * whether or not that instant came. A transaction held open past `withinMs` fails it with 503 and Retry-After.
 */
export async function atQuietInstant<T>(
  db: PGlite,
  gate: PGliteGate,
  withinMs: number,
  take: () => T,
): Promise<T> {
  gate.close();
  let abandoned = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandoned = true;
      reject(
        new EdgewiseError(
          "unavailable",
          `the node did not reach a quiet instant within ${withinMs} ms (a transaction stayed open); nothing was written, try again`,
          { meta: { retryAfterSeconds: 5 } },
        ),
      );
    }, withinMs);
  });
  const attempt = async (): Promise<T> => {
    for (;;) {
      // PGlite's own lock: while held, no statement of any connection runs.
      const done = await db.runExclusive(async () =>
        abandoned || db.isInTransaction() ? undefined : { value: take() },
      );
      if (done) return done.value;
      if (abandoned) throw new Error("abandoned");
      await sleep(5);
    }
  };
  const attempting = attempt();
  // Past the bound it ends on its own; its failure is the bound's, already answered.
  attempting.catch(() => undefined);
  try {
    return await Promise.race([attempting, expired]);
  } finally {
    clearTimeout(timer);
    abandoned = true;
    gate.reopen();
  }
}
