// The bridge's RESP2 codec in isolation, and its Redis link across a lost connection.
import { describe, expect, test } from "bun:test";
import { parseRedisUrl, RedisLink } from "../../deploy/local/redis-bridge/connection.ts";
import {
  encodeCommands,
  ErrorReply,
  type Reply,
  ReplyParser,
  SimpleString,
} from "../../deploy/local/redis-bridge/resp.ts";
import { TEST_REDIS_URL, text } from "./helpers.ts";

const wire = Buffer.concat([
  Buffer.from("+OK\r\n-ERR boom\r\n:-42\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n"),
  Buffer.from("$6\r\n"),
  Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x24, 0x2a]), // a bulk string holding CRLF and RESP-looking bytes
  Buffer.from("\r\n*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+QUEUED\r\n"),
]);

const expected: Reply[] = [
  new SimpleString("OK"),
  new ErrorReply("ERR boom"),
  -42,
  null,
  null,
  [],
  new Uint8Array(0),
  new Uint8Array([0x00, 0xff, 0x0d, 0x0a, 0x24, 0x2a]),
  [1, [new Uint8Array([0x61]), null], new SimpleString("QUEUED")],
];

function parseInChunks(bytes: Buffer, sizes: () => number): Reply[] {
  const replies: Reply[] = [];
  const parser = new ReplyParser((reply) => replies.push(reply));
  for (let at = 0; at < bytes.length; ) {
    const size = Math.max(1, sizes());
    parser.push(bytes.subarray(at, at + size));
    at += size;
  }
  return replies;
}

/** Plain data for toEqual: bytes as number arrays (the parser may hand out Buffers, which serialize oddly). */
const normalize = (reply: Reply | Reply[]): unknown => {
  if (Array.isArray(reply)) return reply.map(normalize);
  if (reply instanceof Uint8Array) return { bytes: [...reply] };
  if (reply instanceof ErrorReply) return { error: reply.message };
  if (reply instanceof SimpleString) return { status: reply.text };
  return reply;
};

describe("RESP2 codec", () => {
  test("parses every reply type, whole or split at any byte", () => {
    const want = normalize(expected);
    expect(normalize(parseInChunks(wire, () => wire.length))).toEqual(want);
    expect(normalize(parseInChunks(wire, () => 1))).toEqual(want);
    for (let seed = 1; seed <= 50; seed++) {
      let state = seed;
      const random = () => {
        state = (state * 1103515245 + 12345) % 2 ** 31;
        return state % 9;
      };
      expect(normalize(parseInChunks(wire, random))).toEqual(want);
    }
  });

  test("a large bulk string arriving in many chunks", () => {
    const value = Buffer.alloc(3_000_000, 0xab);
    const bytes = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from("\r\n:7\r\n")]);
    const replies = parseInChunks(bytes, () => 65_536);
    expect(replies.length).toBe(2);
    expect(Buffer.from(replies[0] as Uint8Array).equals(value)).toBe(true);
    expect(replies[1]).toBe(7);
  });

  test("encodes binary arguments with byte lengths", () => {
    const encoded = encodeCommands([["SET", "ключ", new Uint8Array([0, 13, 10])]]);
    const want = Buffer.concat([
      Buffer.from("*3\r\n$3\r\nSET\r\n$8\r\nключ\r\n$3\r\n"),
      Buffer.from([0, 13, 10]),
      Buffer.from("\r\n"),
    ]);
    expect(encoded.equals(want)).toBe(true);
  });
});

describe("Redis link", () => {
  test("parses redis:// URLs", () => {
    expect(parseRedisUrl("redis://u:p%40ss@10.0.0.1:6380/2")).toEqual({
      host: "10.0.0.1",
      port: 6380,
      username: "u",
      password: "p@ss",
      db: 2,
    });
    expect(() => parseRedisUrl("rediss://127.0.0.1")).toThrow("unsupported");
  });

  test("a lost connection fails what was in flight, and the next command reconnects", async () => {
    const link = new RedisLink(parseRedisUrl(TEST_REDIS_URL));
    try {
      const first = await link.connection();
      const inFlight = first.send([["PING"]]);
      first.close();
      await expect(inFlight).rejects.toThrow("connection lost");
      const [pong] = await link.send([["ECHO", "again"]]);
      expect(text(pong ?? null)).toBe("again");
      expect(await link.connection()).not.toBe(first);
    } finally {
      await link.close();
    }
  }, 10_000);

  test("a Redis that is not there fails fast with a clear error", async () => {
    const link = new RedisLink(parseRedisUrl("redis://127.0.0.1:1"), 2000);
    await expect(link.send([["PING"]])).rejects.toThrow("cannot connect to 127.0.0.1:1");
  }, 10_000);
});
