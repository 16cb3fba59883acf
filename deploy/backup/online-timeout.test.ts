// npm run backup -- --online --timeout: a node that stays silent (no answer, or an archive that stops) is cut off.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "edgewise-online-timeout-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * A stand-in for a hung node on 127.0.0.1: `answer` decides what it does with POST /v1/backup. `cutOff` settles
 * when the client's connection goes (the request's signal aborts): the command really hung up, not just gave up.
 */
function stallingNode(answer: (request: Request) => Promise<Response>) {
  let cutOff = () => {};
  const gone = new Promise<void>((resolve) => {
    cutOff = resolve;
  });
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // No idle timeout of the server's own: only the client may end the wait.
    idleTimeout: 0,
    fetch(request) {
      request.signal.addEventListener("abort", () => cutOff());
      return answer(request);
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, gone, stop: () => server.stop(true) };
}

/** The command as an operator runs it, with `extra` arguments (a --timeout) and environment; the time it took. */
async function backupWithin(url: string, out: string, ...extra: string[]) {
  return await backupWithEnv({}, url, out, ...extra);
}

async function backupWithEnv(env: Record<string, string>, url: string, out: string, ...extra: string[]) {
  const started = performance.now();
  const child = Bun.spawn(
    ["npm", "run", "-s", "backup", "--", "--online", "--url", url, "--out", out, ...extra],
    { cwd: root, env: { ...process.env, ...env, EDGEWISE_TOKEN: "token" }, stdout: "pipe", stderr: "pipe" },
  );
  // Without a bound the command would hang: the test kills it and fails rather than waiting for its own timeout.
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(killer);
  return { code, stdout, stderr, ms: performance.now() - started };
}

const nothingLeft = () => readdirSync(work);

test("a node that takes the request and never answers: cut off after --timeout, exit 1, nothing written", async () => {
  const node = stallingNode(() => new Promise<Response>(() => {}));
  try {
    const out = join(work, "never.tar.gz");
    const result = await backupWithin(node.url, out, "--timeout", "1s");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the node sent nothing for 1000 ms (--timeout)");
    expect(result.stderr).toContain("nothing was written");
    expect(result.ms).toBeLessThan(15_000);
    await node.gone;
    expect(existsSync(out)).toBe(false);
    expect(nothingLeft()).toEqual([]);
  } finally {
    node.stop();
  }
}, 30_000);

test("an archive that stops part way: cut off after --timeout of silence, the partial file removed", async () => {
  // Headers and a first part, then nothing: the partial file exists when the bound expires.
  const node = stallingNode(async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(64 * 1024).fill(7));
      },
      pull() {
        return new Promise<void>(() => {});
      },
    });
    return new Response(body, {
      headers: { "content-type": "application/gzip", "content-length": String(1 << 30) },
    });
  });
  try {
    const out = join(work, "stalled.tar.gz");
    const result = await backupWithin(node.url, out, "--timeout", "1500ms");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the node sent nothing for 1500 ms (--timeout)");
    expect(result.ms).toBeLessThan(15_000);
    await node.gone;
    expect(existsSync(out)).toBe(false);
    expect(nothingLeft()).toEqual([]);
  } finally {
    node.stop();
  }
}, 30_000);

test("a node that sends slowly, each gap under the bound (3.2 s in all, bound 1 s): not cut off", async () => {
  // Eight parts 400 ms apart: 3.2 s in all, each gap under the 1 s bound. Not an archive, so refused as corrupt.
  const node = stallingNode(async () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 8) return controller.close();
        await Bun.sleep(400);
        sent++;
        controller.enqueue(new Uint8Array(1024).fill(sent));
      },
    });
    return new Response(body, { headers: { "content-type": "application/gzip" } });
  });
  try {
    const out = join(work, "slow.tar.gz");
    const result = await backupWithin(node.url, out, "--timeout", "1s");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the archive the node sent is incomplete or corrupt");
    expect(result.stderr).not.toContain("--timeout");
    expect(result.ms).toBeGreaterThan(3_000);
    expect(existsSync(out)).toBe(false);
    expect(nothingLeft()).toEqual([]);
  } finally {
    node.stop();
  }
}, 30_000);

test("a node packing for longer than Bun's own idle timer: --timeout is the bound, not Bun's", async () => {
  // Bun's fetch gives up on a connection idle for BUN_CONFIG_HTTP_IDLE_TIMEOUT (set to 1 s, it fires after about
  // 8 s, on its timer's tick). The node sends nothing until its archive is whole: 12 s of silence here,
  // within --timeout 30s. Not an archive, so refused as corrupt: the answer was read, not cut off.
  const node = stallingNode(async () => {
    await Bun.sleep(12_000);
    return new Response(new Uint8Array(1024).fill(1), { headers: { "content-type": "application/gzip" } });
  });
  try {
    const out = join(work, "packing.tar.gz");
    const result = await backupWithEnv(
      { BUN_CONFIG_HTTP_IDLE_TIMEOUT: "1" },
      node.url,
      out,
      "--timeout",
      "30s",
    );
    expect(result.stderr).toContain("the archive the node sent is incomplete or corrupt");
    expect(result.code).toBe(1);
    expect(result.ms).toBeGreaterThan(12_000);
    expect(existsSync(out)).toBe(false);
    expect(nothingLeft()).toEqual([]);
  } finally {
    node.stop();
  }
}, 40_000);

test("--timeout takes a duration: a bad one is a usage error (64), and --help documents it", async () => {
  const bad = await backupWithin("http://127.0.0.1:9", join(work, "bad.tar.gz"), "--timeout", "soon");
  expect(bad.code).toBe(64);
  expect(bad.stderr).toContain("--timeout takes a duration");
  const help = Bun.spawnSync(["npm", "run", "-s", "backup", "--", "--help"], { cwd: root });
  expect(help.exitCode).toBe(0);
  expect(help.stdout.toString()).toContain("--timeout <duration>");
  expect(help.stdout.toString()).toContain("default 10m");
}, 30_000);
