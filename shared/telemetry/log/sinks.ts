// Log sinks: where finished JSON lines go (the console on every runtime, a list in tests).
import type { LogLevel } from "./levels.ts";

/** One finished record: a JSON line (no newline), and its level for sinks that route by it. */
export type LogSink = (line: string, level: LogLevel) => void;

/**
 * The console, one method per level: Workers Logs and Deno keep the level, Bun and Deno send warn and error to
 * stderr and the rest to stdout.
 */
export const consoleSink: LogSink = (line, level) => {
  switch (level) {
    case "debug":
      console.debug(line);
      return;
    case "info":
      console.info(line);
      return;
    case "warn":
      console.warn(line);
      return;
    case "error":
      console.error(line);
  }
};

export interface CaptureSink {
  sink: LogSink;
  /** Every line written, in order. */
  readonly lines: string[];
  /** The lines, parsed. */
  records(): Array<Record<string, unknown>>;
  clear(): void;
}

/** Keeps every line in memory, for tests that read what was logged. */
export function captureSink(): CaptureSink {
  const lines: string[] = [];
  return {
    sink: (line) => void lines.push(line),
    lines,
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
    clear: () => void lines.splice(0, lines.length),
  };
}
