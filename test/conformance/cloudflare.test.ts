// Conformance of the Cloudflare host: Durable Objects in workerd under `wrangler dev`; a crash SIGKILLs the lot.
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runConformance } from "./run.ts";
import { startConformanceWorker } from "./workerd-driver.ts";

/** One data dir for every start: a restart must find what the killed one wrote. */
const persistTo = mkdtempSync(join(tmpdir(), "edgewise-conf-workerd-"));
afterAll(() => rmSync(persistTo, { recursive: true, force: true }));

runConformance("Durable Objects in workerd (wrangler dev)", () =>
  startConformanceWorker(persistTo, (profileVersion) => ({ PROFILE_VERSION: String(profileVersion) })),
);
