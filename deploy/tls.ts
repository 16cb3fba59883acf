// TLS material from PEM files that may be rotated on disk, and a Bun fetch that presents the current client cert.
//
// Mutual TLS in a split deployment: Bun cannot show the peer certificate to a handler (bun#14097), so a peer's
// identity is the CA that issued its certificate. Each role (`gateway`, `actor-host`, `broker`) has its own CA;
// a listener trusts only the CAs of the roles that may call it (a PEM bundle in `ca`), and a client trusts only
// the CA of the role it calls, with the server's SAN checked against the URL host. `npm run certs` makes them.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, type FSWatcher, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { EdgewiseError } from "../shared/errors/index.ts";

export interface TlsPaths {
  /** PEM certificate (chain) this process presents. */
  cert: string;
  /** PEM private key of `cert`. */
  key: string;
  /** PEM bundle of the CAs this process trusts for its peers. */
  ca?: string;
}

export interface TlsMaterial {
  cert: string;
  key: string;
  ca?: string;
}

export interface TlsFiles {
  /** The last complete, consistent material read (never a half-written rotation). */
  current(): TlsMaterial;
  /** Called after the files changed and the new material was checked; returns an unsubscribe function. */
  onChange(listener: (material: TlsMaterial) => void): () => void;
  close(): void;
}

export interface WatchTlsOptions {
  /** How often the files are re-read, besides fs.watch events. Default 1000 ms. */
  pollMs?: number;
  /** A change that could not be applied (unreadable, not PEM, key not matching): the old material is kept. */
  onError?: (error: unknown) => void;
}

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function readPem(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new EdgewiseError("config.invalid", `cannot read the TLS ${what} file ${path}`, { cause: error });
  }
  if (!text.includes("-----BEGIN ")) {
    throw new EdgewiseError("config.invalid", `the TLS ${what} file ${path} is not PEM`);
  }
  return text;
}

function certificates(text: string, path: string, what: string): X509Certificate[] {
  const blocks = text.match(pemBlock) ?? [];
  if (blocks.length === 0)
    throw new EdgewiseError("config.invalid", `the TLS ${what} file ${path} holds no PEM certificate`);
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch (error) {
    throw new EdgewiseError(
      "config.invalid",
      `the TLS ${what} file ${path} holds an unparsable certificate`,
      {
        cause: error,
      },
    );
  }
}

/** Reads and checks the files once: every certificate parses, and the key is the certificate's key. */
export function readTlsMaterial(paths: TlsPaths): TlsMaterial {
  const cert = readPem(paths.cert, "certificate");
  const key = readPem(paths.key, "key");
  const ca = paths.ca === undefined ? undefined : readPem(paths.ca, "CA");
  const [leaf] = certificates(cert, paths.cert, "certificate");
  if (ca !== undefined && paths.ca !== undefined) certificates(ca, paths.ca, "CA");
  let matches: boolean;
  try {
    matches = leaf?.checkPrivateKey(createPrivateKey(key)) ?? false;
  } catch (error) {
    throw new EdgewiseError("config.invalid", `the TLS key file ${paths.key} holds no usable private key`, {
      cause: error,
    });
  }
  if (!matches) {
    throw new EdgewiseError(
      "config.invalid",
      `the TLS key file ${paths.key} does not match the certificate in ${paths.cert}`,
    );
  }
  return ca === undefined ? { cert, key } : { cert, key, ca };
}

/** What a process presents and trusts, for its log: names and serials, never key material. */
export interface TlsSummary {
  /** The certificate presented: its subject, serial and issuer. */
  presents: string;
  /** Each CA trusted for peers (TLS_CA_FILE), by subject and serial: a rotation shows the old and the new. */
  trusts: string[];
}

const commonName = (name: string) => /(?:^|\n)CN=(.*)/.exec(name)?.[1] ?? name.replace(/\n/g, ", ");

export function tlsSummary(material: TlsMaterial): TlsSummary {
  const [leaf] = (material.cert.match(pemBlock) ?? []).map((block) => new X509Certificate(block));
  const trusted = (material.ca?.match(pemBlock) ?? []).map((block) => new X509Certificate(block));
  return {
    presents: leaf
      ? `${commonName(leaf.subject)} (serial ${leaf.serialNumber}, issued by ${commonName(leaf.issuer)})`
      : "",
    trusts: trusted.map((ca) => `${commonName(ca.subject)} (serial ${ca.serialNumber})`),
  };
}

const same = (a: TlsMaterial, b: TlsMaterial) => a.cert === b.cert && a.key === b.key && a.ca === b.ca;

/**
 * Reads the PEM files now (throwing a `config.invalid` that names the bad file), then follows changes: fs.watch on
 * their directories plus a poll. A changed set is applied only once it is complete and consistent, so a rotation
 * that writes the cert and then the key is picked up after the second write, never in between.
 */
export function watchTlsFiles(paths: TlsPaths, options: WatchTlsOptions = {}): TlsFiles {
  let material = readTlsMaterial(paths);
  const listeners = new Set<(material: TlsMaterial) => void>();
  let lastFailure: string | undefined;
  let closed = false;

  const check = () => {
    if (closed) return;
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(paths);
    } catch (error) {
      // Report a given failure once; it is retried on every poll until the files are consistent again.
      const text = error instanceof Error ? error.message : String(error);
      if (text !== lastFailure) options.onError?.(error);
      lastFailure = text;
      return;
    }
    lastFailure = undefined;
    if (same(next, material)) return;
    material = next;
    for (const listener of [...listeners]) {
      try {
        listener(next);
      } catch (error) {
        options.onError?.(error);
      }
    }
  };

  let debounce: ReturnType<typeof setTimeout> | undefined;
  const soon = () => {
    if (debounce !== undefined || closed) return;
    debounce = setTimeout(() => {
      debounce = undefined;
      check();
    }, 25);
  };

  const watched = [paths.cert, paths.key, ...(paths.ca === undefined ? [] : [paths.ca])].map((p) =>
    resolve(p),
  );
  const names = new Set(watched.map((p) => basename(p)));
  const watchers: FSWatcher[] = [];
  for (const dir of new Set(watched.map((p) => dirname(p)))) {
    try {
      // Watch the directory, not the file: a rotation that renames a new file over the old one replaces the inode.
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || names.has(String(name))) soon();
      });
      watcher.on("error", () => {});
      watchers.push(watcher);
    } catch {
      // fs.watch is unavailable here (some container filesystems): the poll still notices changes.
    }
  }
  const poll = setInterval(check, options.pollMs ?? 1_000);
  (poll as { unref?: () => void }).unref?.();

  return {
    current: () => material,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      clearInterval(poll);
      if (debounce !== undefined) clearTimeout(debounce);
      for (const watcher of watchers) watcher.close();
      listeners.clear();
    },
  };
}

/**
 * A fetch (Bun) that presents `files.current()`'s client certificate and trusts only its `ca`. The material is read on
 * every call, so a rotated certificate applies to the next new connection (Bun pools connections per TLS
 * configuration). `tls` options given by the caller (e.g. `checkServerIdentity`) are kept.
 */
export function mtlsFetch(files: TlsFiles): typeof fetch {
  const deno = (globalThis as { Deno?: DenoHttpClients }).Deno;
  if (deno?.createHttpClient) return denoMtlsFetch(deno, files);
  const bound = (input: string | URL | Request, init?: BunFetchRequestInit) => {
    const { cert, key, ca } = files.current();
    return fetch(input, { ...init, tls: { ...init?.tls, cert, key, ...(ca === undefined ? {} : { ca }) } });
  };
  return Object.assign(bound, { preconnect: fetch.preconnect }) as typeof fetch;
}

/** The part of Deno's API that gives a fetch a client certificate: an HTTP client per TLS configuration. */
interface DenoHttpClients {
  createHttpClient(options: { cert: string; key: string; caCerts?: string[] }): { close(): void };
}

/**
 * On Deno, fetch takes the certificate through an HTTP client: one per rotation. The previous client is closed
 * once calls begun on it have had time to finish (the request timeout's order of magnitude). Its `caCerts` are
 * trusted in addition to Deno's default roots, which no option removes: unlike on Bun, a publicly trusted
 * certificate for the actor host's name is accepted too (SECURITY.md, "Not defended").
 */
function denoMtlsFetch(deno: DenoHttpClients, files: TlsFiles): typeof fetch {
  const clientFor = ({ cert, key, ca }: TlsMaterial) =>
    deno.createHttpClient({ cert, key, ...(ca === undefined ? {} : { caCerts: [ca] }) });
  let client = clientFor(files.current());
  files.onChange((material) => {
    const retired = client;
    client = clientFor(material);
    setTimeout(() => retired.close(), 30_000);
  });
  const bound = (input: string | URL | Request, init?: RequestInit) =>
    fetch(input, { ...init, client } as RequestInit);
  return bound as typeof fetch;
}
