// Starts bench/gateway servers (servers.ts), each in a process of its own.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface RunningServer {
  base: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * `env` is added to this process's environment; an undefined value removes the variable. `checkout` runs the
 * servers.ts of another checkout of the repo (a baseline), this one's by default.
 */
export async function startServer(
  variant: string,
  env: Record<string, string | undefined>,
  checkout?: string,
): Promise<RunningServer> {
  const merged: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...process.env, ...env }))
    if (value !== undefined) merged[name] = value;
  const servers = checkout
    ? join(checkout, "bench", "gateway", "servers.ts")
    : join(import.meta.dir, "servers.ts");
  const child = Bun.spawn([process.execPath, servers, variant], {
    env: merged,
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  let printed = "";
  while (!/listening (\d+)/.test(printed)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`${variant} server exited`);
    printed += new TextDecoder().decode(value);
  }
  const port = /listening (\d+)/.exec(printed)?.[1];
  return {
    base: `http://127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}

export async function withServer<T>(
  variant: string,
  env: Record<string, string | undefined>,
  run: (base: string, pid: number) => Promise<T>,
): Promise<T> {
  const server = await startServer(variant, env);
  try {
    return await run(server.base, server.pid);
  } finally {
    await server.stop();
  }
}

/** A process's CPU time (user + system) in ms, from /proc (Linux); undefined elsewhere. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 (1-based), in clock ticks (100 a second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}
