// Starts a server process for an end-to-end test and waits for a line it prints; kills its whole group.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

export interface Started {
  child: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** The first capture group of `pattern`, once printed. */
  match: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  cwd: string;
  pattern: RegExp;
  timeoutMs?: number;
  /**
   * The command and environment once more, on a new port. A port from freePort() can be taken (by an outgoing
   * connection, another test's server) before the process binds it: given this, a process that exits saying its port
   * is in use is started again with what it returns, 3 starts at most.
   */
  again?: () => { command: string[]; env?: Record<string, string> };
}

/** What a node (start-failure.ts), the broker, Deno, workerd or wrangler print when their port is taken. */
const portTaken = /address already in use|EADDRINUSE|port \d+ is in use/i;

export async function startProcess(command: string[], options: StartOptions): Promise<Started> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(command, options);
    } catch (error) {
      if (!options.again || attempt >= 3 || !(error instanceof PortTaken)) throw error;
      const next = options.again();
      command = next.command;
      options = { ...options, env: next.env ?? options.env };
    }
  }
}

class PortTaken extends Error {}

async function startOnce(command: string[], options: StartOptions): Promise<Started> {
  const child = Bun.spawn(command, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
  });
  let printed = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>)
      printed += decoder.decode(chunk);
  };
  const collected = Promise.all([collect(child.stdout), collect(child.stderr)]).catch(() => {});
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      child.kill(signal);
    }
    await child.exited;
  };
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    const found = options.pattern.exec(printed);
    if (found) return { child, output: () => printed, match: found[1] ?? found[0], kill };
    if (child.exitCode !== null) break;
    await Bun.sleep(50);
  }
  await kill();
  // What it printed last, before saying why it stopped.
  await Promise.race([collected, Bun.sleep(1_000)]);
  const message = `${command.join(" ")} did not print ${options.pattern}:\n${printed.slice(-3000)}`;
  throw portTaken.test(printed) ? new PortTaken(message) : new Error(message);
}

export { freePort } from "../support/wrangler.ts";

/**
 * `npm run start:deno`'s command, read from package.json (`exec deno run <flags> <entry>`), for a test to start a
 * Deno node as an operator would, with the same flags; `--no-lock` added, so a run writes no deno.lock.
 */
export function denoEntryCommand(root: string): string[] {
  const scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts as Record<
    string,
    string
  >;
  const [exec, deno, run, ...rest] = (scripts["start:deno"] ?? "").split(/\s+/);
  if (exec !== "exec" || deno !== "deno" || run !== "run")
    throw new Error("start:deno is not `exec deno run …`");
  const entry = rest.pop() ?? "";
  return [join(root, "node_modules/.bin/deno"), "run", ...rest, "--no-lock", join(root, entry)];
}
