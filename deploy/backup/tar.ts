// A minimal ustar (POSIX tar) writer and streaming reader: regular files and directories only, enough for a data dir.
import { createHash } from "node:crypto";

export const blockSize = 512;

export interface TarHeader {
  /** Relative, with `/` separators; a directory's has no trailing slash. */
  path: string;
  type: "file" | "dir";
  size: number;
  mode: number;
  mtimeSeconds: number;
}

/** Why a reader gave up: the archive is not what a backup writes (truncated, corrupt, or edited). */
export class ArchiveError extends Error {}

const octal = (value: number, width: number) => `${value.toString(8).padStart(width - 1, "0")}\0`;

/** Splits a path into ustar's prefix (155) and name (100) fields; longer paths are refused, not truncated. */
function splitPath(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: "", name: path };
  for (let cut = path.indexOf("/"); cut !== -1; cut = path.indexOf("/", cut + 1)) {
    const prefix = path.slice(0, cut);
    const name = path.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { prefix, name };
  }
  throw new Error(`path too long for the archive: ${path}`);
}

export function encodeHeader(header: TarHeader): Buffer {
  const block = Buffer.alloc(blockSize);
  const { prefix, name } = splitPath(header.type === "dir" ? `${header.path}/` : header.path);
  block.write(name, 0, 100, "utf8");
  block.write(octal(header.mode & 0o7777, 8), 100, "ascii");
  block.write(octal(0, 8), 108, "ascii");
  block.write(octal(0, 8), 116, "ascii");
  block.write(octal(header.type === "dir" ? 0 : header.size, 12), 124, "ascii");
  block.write(octal(Math.max(0, Math.floor(header.mtimeSeconds)), 12), 136, "ascii");
  block.write("        ", 148, "ascii");
  block.write(header.type === "dir" ? "5" : "0", 156, "ascii");
  block.write("ustar\u000000", 257, "ascii");
  block.write(prefix, 345, 155, "utf8");
  block.write(octal(checksum(block), 7), 148, "ascii");
  return block;
}

function checksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < blockSize; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return sum;
}

const field = (block: Buffer, start: number, length: number) => {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString("utf8");
};

const number = (block: Buffer, start: number, length: number) => {
  const text = field(block, start, length).trim();
  if (!/^[0-7]+$/.test(text)) throw new ArchiveError("a tar header holds a malformed number");
  return Number.parseInt(text, 8);
};

/** The header in `block`, or undefined for an end-of-archive (all-zero) block. */
export function decodeHeader(block: Buffer): TarHeader | undefined {
  if (block.every((byte) => byte === 0)) return undefined;
  if (field(block, 257, 6) !== "ustar") throw new ArchiveError("not a ustar archive");
  if (number(block, 148, 8) !== checksum(block)) throw new ArchiveError("a tar header's checksum is wrong");
  const flag = field(block, 156, 1);
  if (flag !== "0" && flag !== "5") throw new ArchiveError(`an entry of an unexpected type (${flag})`);
  const prefix = field(block, 345, 155);
  const path = (prefix ? `${prefix}/${field(block, 0, 100)}` : field(block, 0, 100)).replace(/\/$/, "");
  return {
    path,
    type: flag === "5" ? "dir" : "file",
    size: flag === "5" ? 0 : number(block, 124, 12),
    mode: number(block, 100, 8),
    mtimeSeconds: number(block, 136, 12),
  };
}

/** Zero bytes that pad `size` to a whole block. */
export const padding = (size: number) => Buffer.alloc((blockSize - (size % blockSize)) % blockSize);

/** Reads exact byte counts from a stream of chunks; running out is a truncated archive. */
export class ByteReader {
  private pending: Buffer[] = [];
  private length = 0;
  constructor(private readonly chunks: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    const next = await this.chunks.next();
    if (next.done) return false;
    this.pending.push(next.value);
    this.length += next.value.length;
    return true;
  }

  /** Up to `max` bytes (at least one), or undefined at the end of the stream. */
  async some(max: number): Promise<Buffer | undefined> {
    if (this.length === 0 && !(await this.fill())) return undefined;
    const head = this.pending[0] as Buffer;
    const taken = head.subarray(0, Math.min(max, head.length));
    if (taken.length === head.length) this.pending.shift();
    else this.pending[0] = head.subarray(taken.length);
    this.length -= taken.length;
    return taken;
  }

  async exactly(count: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < count) {
      const part = await this.some(count - got);
      if (!part) throw new ArchiveError("the archive ends early (truncated)");
      parts.push(part);
      got += part.length;
    }
    return Buffer.concat(parts, count);
  }

  /** True when nothing but zero bytes is left (tar pads its end with zero blocks). */
  async onlyZerosLeft(): Promise<boolean> {
    for (let part = await this.some(1 << 16); part; part = await this.some(1 << 16)) {
      if (!part.every((byte) => byte === 0)) return false;
    }
    return true;
  }
}

/** Streams an entry's content to `write`, returning its sha256 (hex). */
export async function readContent(
  reader: ByteReader,
  size: number,
  write: (chunk: Buffer) => void,
): Promise<string> {
  const hash = createHash("sha256");
  let left = size;
  while (left > 0) {
    const chunk = await reader.some(Math.min(left, 1 << 20));
    if (!chunk) throw new ArchiveError("the archive ends early (truncated)");
    hash.update(chunk);
    write(chunk);
    left -= chunk.length;
  }
  await reader.exactly(padding(size).length);
  return hash.digest("hex");
}
