// The PostWebhook contract on Bun (postWithFetch, postWithNodeHttp) and on Deno (postWithNodeHttp), over loopback.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { issueCert, makeCa } from "../../../deploy/local/certs/openssl.ts";
import type { CaseResult } from "../../../test/resilience/check.ts";
import { nodeHttpPost, postWithNodeHttp } from "./node-post.ts";
import { postWithFetch } from "./post.ts";
import { PINNED_NAME, type PostSubject, postCases } from "./post-cases.ts";

const root = resolve(import.meta.dir, "../../..");
const dir = mkdtempSync(join(tmpdir(), "edgewise-post-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ca = makeCa({
  commonName: "Edgewise post test CA",
  cert: join(dir, "ca.pem"),
  key: join(dir, "ca-key.pem"),
});
issueCert({
  ca,
  commonName: PINNED_NAME,
  sans: [`DNS:${PINNED_NAME}`],
  usage: ["serverAuth"],
  cert: join(dir, "server.pem"),
  key: join(dir, "server-key.pem"),
});
const tls = {
  ca: readFileSync(ca.cert, "utf8"),
  cert: readFileSync(join(dir, "server.pem"), "utf8"),
  key: readFileSync(join(dir, "server-key.pem"), "utf8"),
};

const subjects: Record<string, PostSubject> = {
  postWithFetch: { post: postWithFetch, pins: false },
  postWithNodeHttp: { post: postWithNodeHttp, pins: true, trusting: (pem) => nodeHttpPost({ ca: pem }) },
};

for (const [name, subject] of Object.entries(subjects)) {
  describe(`${name} on Bun`, () => {
    for (const entry of postCases(subject, tls)) test(entry.name, () => entry.run());
  });
}

test("postWithNodeHttp on Deno: every case passes", async () => {
  // The cases listen and connect on loopback only, and ask no DNS for the pinned name.
  const child = Bun.spawn(
    [
      join(root, "node_modules/.bin/deno"),
      "run",
      "--no-lock",
      "--allow-net",
      `--allow-read=${dir}`,
      join(import.meta.dir, "post-deno.ts"),
      dir,
    ],
    { cwd: root, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (code !== 0) throw new Error(`deno exited with ${code}:\n${stderr.slice(-2_000)}`);
  const results = JSON.parse(stdout) as CaseResult[];
  expect(results.map((result) => result.name)).toEqual(
    postCases(subjects.postWithNodeHttp!, tls).map((c) => c.name),
  );
  expect(results.filter((result) => !result.ok).map((result) => `${result.name}: ${result.error}`)).toEqual(
    [],
  );
}, 60_000);
