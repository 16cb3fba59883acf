// Why Redis closed a new connection at once: one raw AUTH (or PING) over TCP, to tell a refused password apart.
import { isIP, connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

/**
 * Bun's RedisClient and ioredis both report a refused AUTH (a wrong password in REDIS_URL, or none where Redis
 * requires one) as "Connection closed", the same words as a Redis that is down, so the operator would look at the
 * network. This asks Redis itself, once, after a connection attempt failed fast (a server answered): the error it
 * gives a bare AUTH with the URL's credentials, or a PING without them. Redis's error lines never echo a password.
 *
 * Resolves to that error line (e.g. `WRONGPASS invalid username-password pair or user is disabled.`), or
 * undefined when Redis accepts, cannot be reached, or does not answer within `timeoutMs`.
 */
export function redisRefusal(url: string, timeoutMs = 1000): Promise<string | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.resolve(undefined);
  }
  let password: string;
  let user: string;
  try {
    password = decodeURIComponent(parsed.password);
    user = decodeURIComponent(parsed.username);
  } catch {
    return Promise.resolve(undefined);
  }
  const command = password ? (user ? ["AUTH", user, password] : ["AUTH", password]) : ["PING"];
  const port = Number(parsed.port) || 6379;
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  return new Promise((resolve) => {
    let answer = "";
    let socket: Socket;
    const done = (line: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const send = () => socket.write(resp(command));
    socket =
      parsed.protocol === "rediss:"
        ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }) }, send)
        : tcpConnect({ host, port }, send);
    socket.on("error", () => done(undefined));
    socket.on("close", () => done(undefined));
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("utf8");
      const end = answer.indexOf("\r\n");
      if (end === -1) return;
      // `-ERR …`, `-WRONGPASS …`, `-NOAUTH …` is a refusal; `+OK` or `+PONG` is not.
      done(answer.startsWith("-") ? answer.slice(1, Math.min(end, 201)) : undefined);
    });
  });
}

/** A command in RESP, as a client sends it. */
function resp(parts: string[]): string {
  return `*${parts.length}\r\n${parts.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join("")}`;
}
