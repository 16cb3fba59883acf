// The load generator for bench/gateway: a closed loop (max throughput) and an open loop (a fixed offered rate).

export interface Result {
  requests: number;
  errors: number;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function summarize(latencies: number[], errors: number, seconds: number): Result {
  latencies.sort((a, b) => a - b);
  const at = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    requests: latencies.length,
    errors,
    seconds: round(seconds),
    requestsPerSecond: Math.round(latencies.length / seconds),
    p50Ms: round(at(50)),
    p99Ms: round(at(99)),
  };
}

/**
 * Latency counts from `scheduledAt` when given, so a late generator cannot hide queueing; a request sent before its
 * time (the open loop does not sleep for less than 1 ms) counts from when it was sent, never below zero.
 */
async function once(
  url: string,
  headers: Record<string, string>,
  latencies: number[],
  scheduledAt?: number,
): Promise<boolean> {
  const now = performance.now();
  const started = scheduledAt === undefined ? now : Math.min(scheduledAt, now);
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  latencies.push(performance.now() - started);
  return response.ok;
}

/** `concurrency` workers, each sending its next request when the previous one answered. */
export async function closedLoop(
  base: string,
  path: (i: number) => string,
  headers: Record<string, string>,
  concurrency: number,
  seconds: number,
): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  let n = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline)
        if (!(await once(`${base}${path(n++)}`, headers, latencies))) errors++;
    }),
  );
  return summarize(latencies, errors, (performance.now() - started) / 1000);
}

/** Requests started at a fixed rate whatever the answers (no coordinated omission), for `seconds`. */
export async function openLoop(
  base: string,
  path: (i: number) => string,
  headers: Record<string, string>,
  rate: number,
  seconds: number,
): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const inFlight: Promise<void>[] = [];
  const started = performance.now();
  const total = Math.floor(rate * seconds);
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    inFlight.push(
      once(`${base}${path(i)}`, headers, latencies, due).then((ok) => {
        if (!ok) errors++;
      }),
    );
  }
  await Promise.all(inFlight);
  return summarize(latencies, errors, (performance.now() - started) / 1000);
}
