// `npm run demo` on its own node: it passes, and its closing hint is one that works on a fresh `npm start`.
import { expect, test } from "bun:test";
import { join } from "node:path";

test("the closing hint names no sku or customer that only the demo's own node had", async () => {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "demo.ts")], {
    env: { ...process.env, DEMO_ORDERS: "4", DEMO_CONCURRENCY: "2", NO_COLOR: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, stdout] = await Promise.all([child.exited, new Response(child.stdout).text()]);
  expect(code).toBe(0);
  const hint = stdout.slice(stdout.indexOf("Run it yourself"));
  expect(hint).toContain("Run it yourself");
  // The demo's node, with its mugs and its customer ada, is removed when it ends: an order for them on a fresh
  // node is rejected out_of_stock. The hint points at npm start's own lines, or at this demo against that node.
  expect(hint).not.toContain('"sku":"mug"');
  expect(hint).toContain("EDGEWISE_URL=http://127.0.0.1:8787 EDGEWISE_TOKEN=");
}, 60_000);
