// Framework-free checks for the resilience cases: workerd and Deno run them with no test runner, Bun with one.

export interface Case {
  name: string;
  run(): Promise<void> | void;
}

export interface CaseResult {
  suite: string;
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Deep equality through a key-sorted JSON rendering: enough for the plain data the cases compare. */
export function equal(actual: unknown, expected: unknown, what: string): void {
  const [a, e] = [stable(actual), stable(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** Awaits a promise that must reject, and returns what it rejected with. */
export async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`${what}: expected a rejection, but it resolved`);
}

/** The code of an EdgewiseError (or anything with one), for comparisons. */
export function codeOf(error: unknown): unknown {
  return typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
}

/** A promise with its settle functions outside: a dependency call the case finishes when it wants. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export async function runCases(suites: Record<string, Case[]>): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const [suite, cases] of Object.entries(suites)) {
    for (const entry of cases) {
      const started = performance.now();
      try {
        await entry.run();
        results.push({ suite, name: entry.name, ok: true, ms: elapsed(started) });
      } catch (error) {
        const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        results.push({ suite, name: entry.name, ok: false, ms: elapsed(started), error: message });
      }
    }
  }
  return results;
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 10) / 10;

function stable(value: unknown): string {
  return JSON.stringify(value, (_, item) =>
    item && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );
}
