// What a child process got of the CPU: its CPU time, and its main thread's time running and waiting for a core (Linux).
import { readFileSync } from "node:fs";

export interface CpuSample {
  /** User plus system CPU time of the whole process (all threads), ms. */
  cpuMs: number;
  /** The main thread (the JS thread, which also runs PGlite): time on a CPU, ms. */
  mainRunMs: number;
  /** The main thread: time runnable but waiting for a CPU (other processes had the cores), ms. */
  mainRunQueueMs: number;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICK_MS = 10;

/** Reads /proc; undefined where there is none (not Linux, or the process is gone). */
export function sampleCpu(pid: number): CpuSample | undefined {
  try {
    // Fields after the command's closing parenthesis: state is the 3rd, utime the 14th, stime the 15th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    // schedstat: ns on a CPU, ns waiting on a run queue, time slices (the thread group's leader: the main thread).
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, "utf8").trim().split(" ").map(Number);
    if (!Number.isFinite(ticks) || run === undefined || wait === undefined) return undefined;
    return { cpuMs: ticks * TICK_MS, mainRunMs: run / 1e6, mainRunQueueMs: wait / 1e6 };
  } catch {
    return undefined;
  }
}

/** Between two samples `wallMs` apart, with `deliveries` made: CPU per delivery and the main thread's shares. */
export function cpuBetween(a: CpuSample, b: CpuSample, wallMs: number, deliveries: number) {
  const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
  return {
    cpuMsPerDelivery: deliveries > 0 ? round((b.cpuMs - a.cpuMs) / deliveries, 2) : null,
    mainThreadRunning: round((b.mainRunMs - a.mainRunMs) / wallMs, 2),
    mainThreadWaitingForCpu: round((b.mainRunQueueMs - a.mainRunQueueMs) / wallMs, 2),
  };
}
