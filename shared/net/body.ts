// A request body read whole, up to a limit: refused by its declared length first, then as it streams in.
/**
 * Resolves with at most `limit` bytes; past it throws `tooLarge()` (a declared Content-Length over the limit before
 * anything is read; a chunked or lying body as soon as it passes the limit, its stream cancelled). Each server names
 * its own error: the broker QStash's `{"error"}`, the Redis bridge Upstash's `ERR max request size exceeded`.
 */
export async function readBoundedBody(
  req: Request,
  limit: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  if (Number(req.headers.get("content-length") ?? "0") > limit) throw tooLarge();
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
