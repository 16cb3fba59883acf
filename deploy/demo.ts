// `npm run demo`: a node on embedded defaults, 100 orders through the saga over the public API, and the invariants.
//
//   npm run demo                                        # a fresh node in a temp dir, stopped at the end
//   EDGEWISE_URL=http://127.0.0.1:8787 EDGEWISE_TOKEN=<admin JWT> npm run demo   # against a running node
//
// Against a running node, the skus and customers get names of their own (a run prefix). Its per-caller rate limit
// (RATE_LIMIT, 600/60s by default) applies: a 429 is waited out, so start it with a higher one to keep it fast.
// Options (environment): DEMO_ORDERS (100), DEMO_CONCURRENCY (16), DEMO_SEED (7), DEMO_VERBOSE=1 (node logs).
// Exit code 0 only when every order reached a terminal status and the four invariants of API.md hold.
import process from "node:process";
import { exitWithHelp } from "./cli-help.ts";
import { Api, type EmbeddedNode, type Order, pool, seededRandom, startEmbeddedNode } from "./demo/support.ts";

exitWithHelp([
  "usage: npm run demo",
  "Starts a node of its own (embedded defaults, a temporary data dir, removed at the end), places DEMO_ORDERS orders",
  "through the saga over the API (some cancelled), and checks the invariants of API.md. Exit code 0 only when every",
  "order settled and the invariants hold. Environment: EDGEWISE_URL and EDGEWISE_TOKEN (an admin JWT) run it",
  "against that node instead; DEMO_ORDERS (100), DEMO_CONCURRENCY (16), DEMO_SEED (7); DEMO_VERBOSE=1 prints the",
  "node's logs.",
]);

const ORDERS = Number(process.env.DEMO_ORDERS ?? 100);
const CONCURRENCY = Number(process.env.DEMO_CONCURRENCY ?? 16);
const SEED = Number(process.env.DEMO_SEED ?? 7);
const VERBOSE = process.env.DEMO_VERBOSE === "1";
/** How long orders may take to settle, and the queue to drain, before the demo gives up. */
const SETTLE_MS = 30_000;

type Status = Order["status"];
const terminal = (status: Status) => status !== "pending";

// ---- The shop: some skus with little stock, some customers with little money. ----

const catalog = [
  { name: "mug", priceCents: 1_200, available: 60, weight: 3 },
  { name: "tee", priceCents: 2_500, available: 40, weight: 3 },
  { name: "book", priceCents: 1_800, available: 30, weight: 2 },
  { name: "poster", priceCents: 900, available: 80, weight: 3 },
  { name: "lamp", priceCents: 4_900, available: 3, weight: 1 }, // little stock
  { name: "vinyl", priceCents: 3_200, available: 2, weight: 1 }, // little stock
];
/** Each sku as often as its weight: the scarce ones are asked for less, so most orders can confirm. */
const weighted = catalog.flatMap((sku) => Array.from({ length: sku.weight }, () => sku));
const customers = [
  { name: "ada", balanceCents: 80_000 },
  { name: "ben", balanceCents: 80_000 },
  { name: "cleo", balanceCents: 60_000 },
  { name: "dev", balanceCents: 60_000 },
  { name: "eli", balanceCents: 40_000 },
  { name: "fay", balanceCents: 40_000 },
  { name: "jo", balanceCents: 80_000 },
  { name: "gus", balanceCents: 3_000 }, // little money
  { name: "hal", balanceCents: 1_500 }, // little money
  { name: "ivy", balanceCents: 500 }, // almost none
];

type CancelPlan = "none" | "right-after-placing" | "after-confirmation";

interface Planned {
  n: number;
  customer: string;
  items: Array<{ sku: string; quantity: number }>;
  cancel: CancelPlan;
}

interface Outcome extends Planned {
  orderId: string;
  final: Order;
  placedMs: number;
  settledMs: number;
  cancelSent: boolean;
}

function planOrders(prefix: string): Planned[] {
  const next = seededRandom(SEED);
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)] as T;
  return Array.from({ length: ORDERS }, (_, n) => {
    // A few of each: cancelled at once (while pending), or once they are confirmed.
    const cancel: CancelPlan =
      n % 20 === 6 ? "right-after-placing" : n % 20 === 13 ? "after-confirmation" : "none";
    const lines = 1 + Math.floor(next() * 3);
    const skus = new Set<string>();
    while (skus.size < lines) skus.add(pick(weighted).name);
    const customer = pick(customers).name;
    return {
      n: n + 1,
      // The ones to cancel once confirmed are orders that can confirm: plentiful skus, a customer with money.
      customer: `${prefix}${cancel === "after-confirmation" ? pick(["ada", "ben", "jo"]) : customer}`,
      items:
        cancel === "after-confirmation"
          ? [{ sku: `${prefix}${pick(["mug", "poster"])}`, quantity: 1 }]
          : [...skus].map((sku) => ({ sku: `${prefix}${sku}`, quantity: 1 + Math.floor(next() * 2) })),
      cancel,
    };
  });
}

// ---- Output ----

const tty = process.stdout.isTTY;
const paint = (code: string) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
const green = paint("32");
const red = paint("31");
const yellow = paint("33");
const dim = paint("2");
const bold = paint("1");
const say = (line = "") => console.log(line);
const money = (cents: number | undefined) => (cents === undefined ? "-" : `$${(cents / 100).toFixed(2)}`);
const pad = (text: string, width: number) => text.padEnd(width);
const padLeft = (text: string, width: number) => text.padStart(width);

function statusText(order: Order): string {
  const text = order.reason ? `${order.status} (${order.reason})` : order.status;
  return order.status === "confirmed"
    ? green(pad(text, 30))
    : order.status === "cancelled"
      ? yellow(pad(text, 30))
      : order.status === "rejected"
        ? red(pad(text, 30))
        : pad(text, 30);
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0);

// ---- The run ----

async function waitUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await Bun.sleep(50);
    value = await read();
  }
  return value;
}

interface Check {
  name: string;
  pass: boolean;
  detail: string[];
}

/** The four invariants of API.md, from the public API and what this demo set. */
async function checkInvariants(api: Api, prefix: string, outcomes: Outcome[]): Promise<Check[]> {
  const confirmed = outcomes.filter((o) => o.final.status === "confirmed");
  const stock: Check = {
    name: "stock: available + reserved + sold = everything set",
    pass: true,
    detail: [],
  };
  for (const sku of catalog) {
    const id = `${prefix}${sku.name}`;
    const now = await api.getInventory(id);
    const sold = confirmed.reduce(
      (sum, o) => sum + o.final.items.filter((i) => i.sku === id).reduce((s, i) => s + i.quantity, 0),
      0,
    );
    const ok = now.available + now.reserved + sold === sku.available && now.reserved === 0;
    stock.pass &&= ok;
    stock.detail.push(
      `${pad(id, 14)} ${padLeft(String(now.available), 3)} available + ${now.reserved} reserved + ${padLeft(String(sold), 3)} sold = ${padLeft(String(now.available + now.reserved + sold), 3)}, set ${padLeft(String(sku.available), 3)}${ok ? "" : red("  ✗")}`,
    );
  }
  const balances: Check = {
    name: "balances: set − captures + refunds (no balance below zero)",
    pass: true,
    detail: [],
  };
  const loyalty: Check = {
    name: "loyalty: Σ floor(total / 100) over confirmed orders",
    pass: true,
    detail: [],
  };
  for (const c of customers) {
    const id = `${prefix}${c.name}`;
    const mine = confirmed.filter((o) => o.customer === id);
    // A cancelled order was captured and refunded (net 0); a rejected one was never captured, or refunded.
    const spent = mine.reduce((sum, o) => sum + (o.final.totalCents ?? 0), 0);
    const account = await api.getAccount(id);
    const okBalance = account.balanceCents === c.balanceCents - spent && account.balanceCents >= 0;
    balances.pass &&= okBalance;
    balances.detail.push(
      `${pad(id, 14)} ${padLeft(money(c.balanceCents), 9)} set − ${padLeft(money(spent), 9)} kept = ${padLeft(money(c.balanceCents - spent), 9)}, balance ${padLeft(money(account.balanceCents), 9)}${okBalance ? "" : red("  ✗")}`,
    );
    const expected = mine.reduce((sum, o) => sum + Math.floor((o.final.totalCents ?? 0) / 100), 0);
    const points = (await api.getLoyalty(id)).points;
    const okPoints = points === expected;
    loyalty.pass &&= okPoints;
    loyalty.detail.push(
      `${pad(id, 14)} ${padLeft(String(points), 5)} points, expected ${padLeft(String(expected), 5)} from ${mine.length} confirmed${okPoints ? "" : red("  ✗")}`,
    );
  }
  // A charge applied twice leaves a balance below what is expected; a credit applied twice, points above it.
  // Exact balances and points (with every delivery at least once) are what "never twice" looks like from outside.
  const once: Check = {
    name: "exactly once: no charge and no point credit applied twice",
    pass: balances.pass && loyalty.pass,
    detail: [
      balances.pass && loyalty.pass
        ? `every balance and every points total is exact: nothing was charged or credited twice`
        : "a balance or a points total differs from the orders' outcomes (see above)",
    ],
  };
  return [stock, balances, loyalty, once];
}

async function main(): Promise<number> {
  const started = performance.now();
  const remoteUrl = process.env.EDGEWISE_URL;
  const remoteToken = process.env.EDGEWISE_TOKEN;
  let embedded: EmbeddedNode | undefined;
  const nodeLog: string[] = [];
  let api: Api;
  let prefix = "";

  if (remoteUrl && remoteToken) {
    api = new Api(remoteUrl.replace(/\/+$/, ""), remoteToken);
    // A running node keeps its data: this run's skus and customers get names of their own.
    prefix = `demo${Date.now().toString(36)}-`;
    say(bold(`Edgewise demo against ${api.base}`));
  } else {
    if (remoteUrl || remoteToken)
      say(yellow("EDGEWISE_URL and EDGEWISE_TOKEN go together; starting a node instead."));
    say(bold("Edgewise demo: starting a node on embedded defaults…"));
    embedded = await startEmbeddedNode({
      // This demo's own node: the per-caller rate limit (600/60s by default) would only slow the polling down.
      env: { RATE_LIMIT: "1000000/60s" },
      log: (line) => {
        nodeLog.push(line);
        if (VERBOSE) console.error(dim(`[edgewise] ${line}`));
      },
    });
    api = new Api(embedded.url, embedded.token);
    say(`  node:    ${embedded.url}  (${((performance.now() - started) / 1000).toFixed(1)} s to start)`);
    say(`  storage: PGlite, SQLite and the embedded broker in ${embedded.dataDir} (removed at the end)`);
    say("  cache:   in process memory");
  }

  try {
    // ---- Seed ----
    say();
    say(bold("Seeding through the API (admin token)"));
    for (const sku of catalog) await api.putInventory(`${prefix}${sku.name}`, sku.available, sku.priceCents);
    for (const c of customers) await api.putAccount(`${prefix}${c.name}`, c.balanceCents);
    say(
      `  inventory: ${catalog.map((s) => `${prefix}${s.name} ${s.available}×${money(s.priceCents)}`).join(", ")}`,
    );
    say(`  accounts:  ${customers.map((c) => `${prefix}${c.name} ${money(c.balanceCents)}`).join(", ")}`);

    // ---- Orders ----
    const planned = planOrders(prefix);
    say();
    say(
      bold(
        `Placing ${planned.length} orders, ${CONCURRENCY} at a time; cancelling ${planned.filter((p) => p.cancel === "right-after-placing").length} right after placing and ${planned.filter((p) => p.cancel === "after-confirmation").length} once confirmed`,
      ),
    );
    const t0 = performance.now();
    const deadline = Date.now() + SETTLE_MS;
    const read = (orderId: string) => api.getOrder(orderId);
    const outcomes = await pool(planned, CONCURRENCY, async (plan): Promise<Outcome> => {
      const placedAt = performance.now();
      const { orderId } = await api.placeOrder(plan.customer, plan.items);
      const placedMs = performance.now() - placedAt;
      let cancelSent = false;
      if (plan.cancel === "right-after-placing") {
        await api.cancelOrder(orderId);
        cancelSent = true;
      }
      let final = await waitUntil(
        () => read(orderId),
        (o) => terminal(o.status),
        deadline - Date.now(),
      );
      if (plan.cancel === "after-confirmation" && final.status === "confirmed") {
        await api.cancelOrder(orderId);
        cancelSent = true;
        final = await waitUntil(
          () => read(orderId),
          (o) => o.status === "cancelled",
          deadline - Date.now(),
        );
      }
      return { ...plan, orderId, final, placedMs, settledMs: performance.now() - placedAt, cancelSent };
    });
    const elapsed = (performance.now() - t0) / 1000;

    // ---- How each order ended ----
    say();
    say(
      dim(
        `${padLeft("#", 3)}  ${pad("order id", 21)}  ${pad("customer", 10)}  ${padLeft("total", 9)}  ${pad("status", 30)}  ${padLeft("ms", 5)}  items`,
      ),
    );
    for (const o of outcomes) {
      const note =
        o.cancel === "right-after-placing"
          ? "  ← cancelled right after placing"
          : o.cancel === "after-confirmation"
            ? o.cancelSent
              ? "  ← cancelled after confirmation"
              : "  ← to cancel once confirmed (was not confirmed)"
            : "";
      say(
        `${padLeft(String(o.n), 3)}  ${pad(o.orderId, 21)}  ${pad(o.customer, 10)}  ${padLeft(money(o.final.totalCents), 9)}  ${statusText(o.final)}  ${padLeft(String(Math.round(o.settledMs)), 5)}  ${o.items.map((i) => `${i.quantity}×${i.sku}`).join(" ")}${dim(note)}`,
      );
    }

    // ---- Counts ----
    const counts = new Map<string, number>();
    for (const o of outcomes) {
      const key = o.final.reason
        ? `${o.final.status} (${o.final.reason})`
        : o.final.status === "cancelled"
          ? `cancelled (${o.cancel === "after-confirmation" ? "after confirmation" : "while pending"})`
          : o.final.status;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const pending = outcomes.filter((o) => !terminal(o.final.status));
    const settle = outcomes.map((o) => o.settledMs).sort((a, b) => a - b);
    const place = outcomes.map((o) => o.placedMs).sort((a, b) => a - b);
    say();
    say(bold("Outcomes"));
    for (const [key, count] of [...counts].sort((a, b) => b[1] - a[1])) {
      say(`  ${pad(key, 32)} ${padLeft(String(count), 4)}`);
    }
    say(
      `  ${outcomes.length} orders settled in ${elapsed.toFixed(2)} s; POST /v1/orders p50 ${percentile(place, 50).toFixed(0)} ms; placement to final status p50 ${percentile(settle, 50).toFixed(0)} ms, p99 ${percentile(settle, 99).toFixed(0)} ms (includes the cancel round trips)`,
    );

    // ---- Invariants: once the queue has drained; give the last refunds, credits and cache refreshes a moment ----
    say();
    say(bold("Invariants (API.md), from the public API"));
    let checks = await checkInvariants(api, prefix, outcomes);
    const drainDeadline = Date.now() + 15_000;
    while (checks.some((c) => !c.pass) && Date.now() < drainDeadline) {
      await Bun.sleep(200);
      checks = await checkInvariants(api, prefix, outcomes);
    }
    const allTerminal = pending.length === 0;
    say(
      `  ${allTerminal ? green("PASS") : red("FAIL")}  every order reached a terminal status${allTerminal ? "" : ` (${pending.length} still pending: ${pending.map((o) => o.orderId).join(", ")})`}`,
    );
    for (const check of checks) {
      say(`  ${check.pass ? green("PASS") : red("FAIL")}  ${check.name}`);
      for (const line of check.detail) say(dim(`          ${line}`));
    }
    const ok = allTerminal && checks.every((c) => c.pass);
    say();
    say(
      ok
        ? green(bold(`All good in ${((performance.now() - started) / 1000).toFixed(1)} s.`))
        : red(bold("Something does not add up: see the FAIL lines above.")),
    );
    if (!ok && embedded && !VERBOSE && nodeLog.length > 0) {
      say(dim("Node log:"));
      for (const line of nodeLog.slice(-40)) say(dim(`  ${line}`));
    }
    if (embedded) {
      say();
      // This node and its shop are gone now: a fresh `npm start` has no "mug" nor "ada", so an order for them would
      // only be rejected. Point at what works there: its own printed lines, or this demo against it.
      say(
        dim(
          "Run it yourself: `npm start` prints an admin token and curl lines that stock a sku, fund a customer",
        ),
      );
      say(dim("and place an order; or run this demo against that node:"));
      say(
        dim("  EDGEWISE_URL=http://127.0.0.1:8787 EDGEWISE_TOKEN=<the admin token it printed> npm run demo"),
      );
    }
    return ok ? 0 : 1;
  } finally {
    if (embedded) await embedded.stop();
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(red(`demo failed: ${error instanceof Error ? error.message : String(error)}`));
  process.exitCode = 1;
}
