// HTTP semantics a strict client, proxy or CDN relies on, checked the same against a node on any runtime: canonical
// paths, HEAD's Date, and request bodies the gateway cannot read as sent (content-coded, another charset, a member
// named twice).
import { expect } from "bun:test";

/** `base` is the node's URL, `auth` an admin's Authorization header; the node runs the commerce API. */
export async function trailingSlashRedirects(base: string, auth: Record<string, string>): Promise<void> {
  const redirected = await fetch(`${base}/v1/orders/?customerId=c%2F1&limit=5`, {
    headers: auth,
    redirect: "manual",
  });
  expect(redirected.status).toBe(308);
  expect(redirected.headers.get("location")).toBe("/v1/orders?customerId=c%2F1&limit=5");
  // A client that follows it gets the list, as from the path itself.
  const followed = await fetch(`${base}/v1/orders/?customerId=c1`, { headers: auth });
  expect(followed.status).toBe(200);
  expect(await followed.json()).toEqual({ items: [], nextCursor: null });

  const write = await fetch(`${base}/v1/orders/`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ customerId: "c1", items: [{ sku: "s1", quantity: 1 }] }),
    redirect: "manual",
  });
  expect(write.status).toBe(404);
  expect(((await write.json()) as { detail: string }).detail).toContain("the path is /v1/orders,");
}

export async function headAnswersAreDated(base: string, auth: Record<string, string>): Promise<void> {
  for (const path of ["/healthz", "/v1/inventory/never-set"]) {
    const get = await fetch(`${base}${path}`, { headers: auth });
    await get.body?.cancel();
    const head = await fetch(`${base}${path}`, { method: "HEAD", headers: auth });
    expect({ path, status: head.status }).toEqual({ path, status: get.status });
    expect(get.headers.get("date")).toMatch(/GMT$/);
    expect(head.headers.get("date")).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  }
}

export async function unreadableBodiesRefused(base: string, auth: Record<string, string>): Promise<void> {
  const sku = `http-semantics-${crypto.randomUUID()}`;
  const put = (body: Uint8Array<ArrayBuffer> | string, headers: Record<string, string>) =>
    fetch(`${base}/v1/inventory/${sku}`, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/json", ...headers },
      body,
    });
  const plain = '{"available":1,"priceCents":1}';
  const gzipped = await put(new Uint8Array(Bun.gzipSync(Buffer.from(plain))), { "content-encoding": "gzip" });
  expect(gzipped.status).toBe(415);
  expect(gzipped.headers.get("accept-encoding")).toBe("identity");
  expect((await put(plain, { "content-type": "application/json; charset=latin1" })).status).toBe(415);
  const twice = await put('{"available":1,"priceCents":1,"available":5}', {});
  expect(twice.status).toBe(400);
  expect(((await twice.json()) as { errors: Array<{ path: string }> }).errors[0]?.path).toBe("available");
  expect((await fetch(`${base}/v1/inventory/${sku}`, { headers: auth })).status).toBe(404);
  // The same body, plain and once: set.
  expect((await put(plain, { "content-type": "application/json; charset=UTF-8" })).status).toBe(200);
}
