// A loopback port for a server a test kills and starts again on the same port.
import { readFileSync } from "node:fs";

/** The kernel's ephemeral range, from which it picks the local port of every outgoing connection. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    if (low && high) return [low, high];
  } catch {}
  return [32_768, 60_999];
}

/**
 * A port nobody listens on now, outside the kernel's ephemeral range (below it, as a rule). A port from that range
 * (port 0, or a random one in it) can be taken by any outgoing connection of the machine between a server's kill and
 * its restart, and the restart then fails with "port in use" (CI on a2507cc: pglite.test.ts picked 38060). Outside the range only another
 * explicit listener can take it, and this one is checked free when picked.
 */
export function restartablePort(): number {
  const [ephemeralLow, ephemeralHigh] = ephemeralRange();
  // Below the range where there is room for it (the usual 32768-60999), else above it.
  const [low, high] = ephemeralLow > 21_000 ? [20_000, ephemeralLow - 1] : [ephemeralHigh + 1, 65_535];
  if (high <= low) throw new Error(`no port outside the ephemeral range ${ephemeralLow}-${ephemeralHigh}`);
  for (let tries = 0; tries < 50; tries++) {
    const port = low + Math.floor(Math.random() * (high - low));
    try {
      Bun.serve({ port, hostname: "127.0.0.1", fetch: () => new Response() }).stop(true);
      return port;
    } catch {}
  }
  throw new Error(`no free port between ${low} and ${high} after 50 tries`);
}
