// stopOnSignals in a child process: a stop that hangs is bounded, a second signal exits at once, each says so.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";

const shutdownModule = join(import.meta.dir, "shutdown.ts");
const children: Array<{ kill(signal?: number): void }> = [];
// A child whose stop never exits (the bug this covers) must not outlive its test.
afterEach(() => {
  for (const proc of children.splice(0)) proc.kill(9);
});

/** A child that prints "ready", then runs stopOnSignals with a stop that resolves, rejects or never settles. */
async function child(stop: "resolves" | "rejects" | "hangs", timeoutMs: number) {
  const body = {
    resolves: "async () => {}",
    rejects: "async () => { throw new Error('pool would not close'); }",
    hangs: "() => new Promise(() => {})",
  }[stop];
  const script = `
    import { stopOnSignals } from ${JSON.stringify(shutdownModule)};
    stopOnSignals(${body}, (signal) => console.log("draining on " + signal), { timeoutMs: ${timeoutMs} });
    setInterval(() => {}, 1000);
    console.log("ready");`;
  const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  children.push(proc);
  const reader = proc.stdout.getReader();
  let out = "";
  /** Reads stdout until it holds `text` (or ends). */
  const printed = async (text: string) => {
    while (!out.includes(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
  };
  await printed("ready");
  return {
    proc,
    printed,
    async ended() {
      const code = await proc.exited;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      return { code, stdout: out, stderr: await new Response(proc.stderr).text() };
    },
  };
}

describe("stopOnSignals", () => {
  test("a stop that resolves exits 0 and logs how long it took", async () => {
    const { proc, ended } = await child("resolves", 5_000);
    proc.kill("SIGTERM");
    const { code, stdout } = await ended();
    expect(code).toBe(0);
    expect(stdout).toContain("draining on SIGTERM");
    expect(stdout).toMatch(/stopped in \d+ ms/);
  });

  test("a stop that fails exits 1 and names why", async () => {
    const { proc, ended } = await child("rejects", 5_000);
    proc.kill("SIGTERM");
    const { code, stderr } = await ended();
    expect(code).toBe(1);
    expect(stderr).toContain("the stop failed: pool would not close");
  });

  test("a stop that hangs is bounded: exit 1 after the timeout", async () => {
    const { proc, ended } = await child("hangs", 300);
    const started = Date.now();
    proc.kill("SIGTERM");
    const { code, stderr } = await ended();
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stderr).toContain("did not finish within 300 ms");
  });

  test("a second signal during the stop exits at once", async () => {
    const { proc, printed, ended } = await child("hangs", 60_000);
    proc.kill("SIGTERM");
    // The stop under way before the second signal. A sleep is not enough: a child not yet run when both are pending
    // takes SIGINT first (the kernel delivers the lower number first), stops on it and exits on SIGTERM.
    await printed("draining on SIGTERM");
    const started = Date.now();
    proc.kill("SIGINT");
    const { code, stderr } = await ended();
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stderr).toContain("SIGINT during the stop: exiting now");
  });
});
