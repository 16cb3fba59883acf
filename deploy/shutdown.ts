// Graceful shutdown for a process: SIGINT or SIGTERM stops it once, then exits 0 (1 if stopping failed).
import process from "node:process";

export function stopOnSignals(stop: () => Promise<unknown>, onSignal?: (signal: string) => void): void {
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      onSignal?.(signal);
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
