// Summarizes a `bun --cpu-prof` profile: self time by function, by source file or package, and inclusive time.
//
//   bun --cpu-prof --cpu-prof-dir=/tmp/saga-prof bench/saga/index.ts > /tmp/saga.json
//   bun bench/saga/profile.ts /tmp/saga-prof/*.cpuprofile [--top 25]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  /** Epoch microseconds (Bun). */
  startTime: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "25" },
    /** Only samples in this window, in epoch ms (the bench prints each phase's window on stderr). */
    from: { type: "string" },
    to: { type: "string" },
  },
});
const file = positionals[0];
if (!file) {
  console.error("usage: bun bench/saga/profile.ts <file.cpuprofile> [--top N]");
  process.exit(2);
}
const top = Number(values.top);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

/** A file's area: the package under node_modules, or the repo path. */
function area(url: string): string {
  if (!url) return "(native / runtime)";
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const repo = url.indexOf("/work/");
  return repo >= 0 ? url.slice(url.indexOf("/", repo + "/work/".length) + 1) : url;
}

// Bun records no samples while the thread is idle, and the gap lands on the next sample's time delta: each sample
// counts as one sampling interval instead, so the shares are of the time the thread was running (or blocked in a
// synchronous call such as an fsync), not of wall time.
const selfTime = new Map<number, number>();
let total = 0;
const fromUs = values.from ? Number(values.from) * 1000 : Number.NEGATIVE_INFINITY;
const toUs = values.to ? Number(values.to) * 1000 : Number.POSITIVE_INFINITY;
let clock = profile.startTime;
profile.samples.forEach((id, i) => {
  clock += profile.timeDeltas[i] ?? 0;
  if (clock < fromUs || clock > toUs) return;
  total += 1;
  selfTime.set(id, (selfTime.get(id) ?? 0) + 1);
});
const sortedDeltas = [...profile.timeDeltas].sort((a, b) => a - b);
const interval = sortedDeltas[Math.floor(sortedDeltas.length / 2)] ?? 1000;

const byFunction = new Map<string, number>();
const byArea = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, time] of selfTime) {
  const node = byId.get(id);
  if (!node) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const name = `${functionName || "(anonymous)"} ${area(url)}${url ? `:${lineNumber + 1}` : ""}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + time);
  byArea.set(area(url), (byArea.get(area(url)) ?? 0) + time);
  // Inclusive by area: each area on the sample's stack counts once.
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at);
    if (!frame) break;
    const key = area(frame.callFrame.url);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + time);
  }
}

/** Which part of the node a sample belongs to, from its whole stack (first rule that matches). */
const fsCalls = new Set([
  "writeSync",
  "readSync",
  "fstatSync",
  "lstatSync",
  "statSync",
  "openSync",
  "closeSync",
]);
const fsCalls2 = new Set([
  "writeFileSync",
  "fsyncSync",
  "fdatasyncSync",
  "unlinkSync",
  "renameSync",
  "mkdirSync",
]);
function component(id: number): string {
  const frames: ProfileNode["callFrame"][] = [];
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at);
    if (!frame) break;
    frames.push(frame.callFrame);
  }
  const leaf = frames[0]?.functionName ?? "";
  const on = (part: string) => frames.some((f) => f.url.includes(part));
  const named = (name: string) => frames.some((f) => f.functionName === name);
  if (on("@electric-sql/pglite")) {
    if (fsCalls.has(leaf) || fsCalls2.has(leaf) || named("tryFSOperation"))
      return "PGlite: synchronous file I/O (Emscripten NODEFS)";
    if (leaf === "writeBuffered" || named("_write")) return "PGlite socket: writing replies to TCP";
    if (leaf.startsWith(".wasm-function") || leaf === "wasm-stub") return "PGlite: Postgres itself (WASM)";
    return "PGlite: JS glue (socket framing, buffers)";
  }
  if (on("bun:sqlite")) {
    if (on("actors/runtime/relay.ts")) return "SQLite: the relay marking outbox rows delivered";
    if (on("actors/runtime/group-commit.ts")) return "SQLite: turn group commits";
    return "SQLite: other";
  }
  if (on("node_modules/postgres/")) return "postgres.js (client side of PGlite)";
  if (on("node_modules/jose/") || ["importKey", "digest", "verify", "sign"].includes(leaf))
    return "JWT and HMAC (jose, WebCrypto)";
  if (on("deploy/local/broker/") || on("@upstash/qstash")) return "broker and QStash client (JS)";
  if (on("node_modules/hono/") || on("/edge/")) return "gateway and delivery routes (Hono, middleware)";
  if (on("/actors/")) return "actor runtime and commerce code";
  if (on("/bench/")) return "the bench's client and probe";
  return "other (runtime, fetch, timers)";
}
const byComponent = new Map<string, number>();
for (const [id, time] of selfTime)
  byComponent.set(component(id), (byComponent.get(component(id)) ?? 0) + time);

const pct = (time: number) => `${((100 * time) / total).toFixed(1).padStart(5)}%`;
const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, time] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${pct(time)}  ${name}`);
  }
};
const wall = Math.min(clock, toUs) - Math.max(profile.startTime, fromUs);
console.log(
  `${file}: ${total} samples (≈ ${((total * interval) / 1e6).toFixed(1)} s busy at ${interval} µs each) over ${(wall / 1e6).toFixed(1)} s`,
);
print("by component (the whole stack decides)", byComponent);
print("self time by function", byFunction);
print("self time by file or package", byArea);
print("inclusive time by file or package (on the stack)", inclusive);
