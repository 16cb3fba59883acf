// A conformance driver for a host in another process: speaks the control protocol, and SIGKILLs to crash.
import type { Subprocess } from "bun";
import type { Envelope } from "../../shared/envelope/index.ts";
import type { ConformanceDriver } from "./cases.ts";
import type { Outcome, Snapshot } from "./protocol.ts";

export interface HostProcessSpec {
  name: string;
  /** Command line for a given profile schema version; it must print `listening <port>` once ready. */
  command: (profileVersion: 1 | 2) => string[];
  env?: Record<string, string>;
  cwd?: string;
  startTimeoutMs?: number;
  /** What the host prints once ready, with the port as group 1. Default `listening <port>`. */
  readyPattern?: RegExp;
  /** Runs the host in its own process group and kills the whole group, for hosts that spawn children. */
  processGroup?: boolean;
}

export class HttpDriver implements ConformanceDriver {
  readonly name: string;
  private child: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  private base = "";
  private output = "";

  private constructor(private readonly spec: HostProcessSpec) {
    this.name = spec.name;
  }

  /** What the host process has printed so far (stdout and stderr). */
  get log(): string {
    return this.output;
  }

  static async start(spec: HostProcessSpec): Promise<HttpDriver> {
    const driver = new HttpDriver(spec);
    await driver.spawn(1);
    return driver;
  }

  /**
   * A port picked as free can be taken by another process before the host binds it: then the command is built
   * again (with a fresh port) and started once more.
   */
  private async spawn(profileVersion: 1 | 2): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.spawnOnce(profileVersion);
      } catch (error) {
        if (attempt >= 3 || !/address already in use|EADDRINUSE/i.test(this.output)) throw error;
      }
    }
  }

  private async spawnOnce(profileVersion: 1 | 2): Promise<void> {
    this.output = "";
    const child = Bun.spawn(this.spec.command(profileVersion), {
      cwd: this.spec.cwd ?? process.cwd(),
      env: { ...process.env, ...this.spec.env, PROFILE_VERSION: String(profileVersion) },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: this.spec.processGroup ?? false,
    });
    this.child = child;
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      const reader = stream.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        this.output += decoder.decode(value, { stream: true });
      }
    };
    void collect(child.stdout);
    void collect(child.stderr);
    const deadline = Date.now() + (this.spec.startTimeoutMs ?? 30_000);
    while (Date.now() < deadline) {
      const port = (this.spec.readyPattern ?? /listening (\d+)/).exec(this.output)?.[1];
      if (port) {
        this.base = `http://127.0.0.1:${port}`;
        try {
          if ((await fetch(`${this.base}/healthz`)).ok) return;
        } catch {
          // not accepting yet
        }
      }
      if (child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.signal(child);
    throw new Error(`${this.name} host did not start:\n${this.output.slice(-2_000)}`);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.base}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    const payload = (await response.json()) as T & { error?: unknown };
    if (!response.ok) throw new Error(`${this.name} ${path}: ${JSON.stringify(payload)}`);
    return payload;
  }

  ask(type: string, key: string, message: string, data: unknown, id?: string): Promise<Outcome> {
    return this.call("POST", "/ask", { type, key, message, data, ...(id ? { id } : {}) });
  }
  receive(envelope: Envelope): Promise<Outcome> {
    return this.call("POST", "/receive", envelope);
  }
  inspect(type: string, key: string): Promise<Snapshot> {
    return this.call("GET", `/inspect?type=${encodeURIComponent(type)}&key=${encodeURIComponent(key)}`);
  }
  sent(): Promise<Envelope[]> {
    return this.call("GET", "/sent");
  }
  async setTransportFailing(failing: boolean): Promise<void> {
    await this.call("POST", "/transport", { failing });
  }

  async crash(options: { profileVersion?: 1 | 2 } = {}): Promise<void> {
    await this.kill();
    await this.spawn(options.profileVersion ?? 1);
  }

  private async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.signal(child);
    await child.exited;
    this.child = undefined;
  }

  private signal(child: Subprocess): void {
    if (this.spec.processGroup) {
      try {
        process.kill(-child.pid, "SIGKILL");
        return;
      } catch {
        // the group is gone already; fall through to the child itself
      }
    }
    child.kill("SIGKILL");
  }

  close(): Promise<void> {
    return this.kill();
  }
}
