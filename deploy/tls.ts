// TLS material from PEM files that may be rotated on disk, and fetches that present it (a client cert) or trust it (CAs).
//
// Mutual TLS in a split deployment: Bun cannot show the peer certificate to a handler (bun#14097), so a peer's
// identity is the CA that issued its certificate. Each role (`gateway`, `actor-host`, `broker`) has its own CA;
// a listener trusts only the CAs of the roles that may call it (a PEM bundle in `ca`), and a client trusts only
// the CA of the role it calls, with the server's SAN checked against the URL host. `npm run certs` makes them.
// A node that publishes to a self-hosted broker over https trusts the broker CA for it (`caFetch`, QSTASH_CA_FILE).
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

/** Files followed as they are rotated on disk: what they held when last read whole and checked. */
export interface WatchedFiles<T> {
  /** The last complete, consistent content read (never a half-written rotation). */
  current(): T;
  /** Called after the files changed and the new content was checked; returns an unsubscribe function. */
  onChange(listener: (value: T) => void): () => void;
  close(): void;
}

export interface TlsFiles extends WatchedFiles<TlsMaterial> {}

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

/** Reads and checks a CA bundle once: PEM, and every certificate in it parses. */
export function readCaBundle(path: string): string {
  const ca = readPem(path, "CA");
  certificates(ca, path, "CA");
  return ca;
}

/** What a process presents and trusts, for its log: names and serials, never key material. */
export interface TlsSummary {
  /** The certificate presented: its subject, serial and issuer. */
  presents: string;
  /** Each CA trusted for peers (TLS_CA_FILE), by subject and serial: a rotation shows the old and the new. */
  trusts: string[];
}

const commonName = (name: string) => /(?:^|\n)CN=(.*)/.exec(name)?.[1] ?? name.replace(/\n/g, ", ");

/** The CAs of a PEM bundle, for a log: each by subject and serial. */
export function caSummary(bundle: string | undefined): string[] {
  return (bundle?.match(pemBlock) ?? [])
    .map((block) => new X509Certificate(block))
    .map((ca) => `${commonName(ca.subject)} (serial ${ca.serialNumber})`);
}

export function tlsSummary(material: TlsMaterial): TlsSummary {
  const [leaf] = (material.cert.match(pemBlock) ?? []).map((block) => new X509Certificate(block));
  return {
    presents: leaf
      ? `${commonName(leaf.subject)} (serial ${leaf.serialNumber}, issued by ${commonName(leaf.issuer)})`
      : "",
    trusts: caSummary(material.ca),
  };
}

const same = (a: TlsMaterial, b: TlsMaterial) => a.cert === b.cert && a.key === b.key && a.ca === b.ca;

/**
 * Reads the PEM files now (throwing a `config.invalid` that names the bad file), then follows changes: fs.watch on
 * their directories plus a poll. A changed set is applied only once it is complete and consistent, so a rotation
 * that writes the cert and then the key is picked up after the second write, never in between.
 */
export function watchTlsFiles(paths: TlsPaths, options: WatchTlsOptions = {}): TlsFiles {
  const files = [paths.cert, paths.key, ...(paths.ca === undefined ? [] : [paths.ca])];
  return followFiles(files, () => readTlsMaterial(paths), same, options);
}

/**
 * A CA bundle alone (a client's trust, with no certificate of its own to present), followed as `watchTlsFiles`
 * follows a certificate: a rotation's new bundle applies to the next new connection.
 */
export function watchCaBundle(path: string, options: WatchTlsOptions = {}): WatchedFiles<string> {
  return followFiles(
    [path],
    () => readCaBundle(path),
    (a, b) => a === b,
    options,
  );
}

/** Reads `read()` now (a throw is the caller's), then again whenever one of `paths` may have changed. */
function followFiles<T>(
  paths: string[],
  read: () => T,
  same: (a: T, b: T) => boolean,
  options: WatchTlsOptions,
): WatchedFiles<T> {
  let value = read();
  const listeners = new Set<(value: T) => void>();
  let lastFailure: string | undefined;
  let closed = false;

  const check = () => {
    if (closed) return;
    let next: T;
    try {
      next = read();
    } catch (error) {
      // Report a given failure once; it is retried on every poll until the files are consistent again.
      const text = error instanceof Error ? error.message : String(error);
      if (text !== lastFailure) options.onError?.(error);
      lastFailure = text;
      return;
    }
    lastFailure = undefined;
    if (same(next, value)) return;
    value = next;
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

  const watched = paths.map((p) => resolve(p));
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
    current: () => value,
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
  if (deno?.createHttpClient)
    return denoFetch(deno, files, ({ cert, key, ca }) => ({
      cert,
      key,
      ...(ca === undefined ? {} : { caCerts: [ca] }),
    }));
  const bound = (input: string | URL | Request, init?: BunFetchRequestInit) => {
    const { cert, key, ca } = files.current();
    return fetch(input, { ...init, tls: { ...init?.tls, cert, key, ...(ca === undefined ? {} : { ca }) } });
  };
  return Object.assign(bound, { preconnect: fetch.preconnect }) as typeof fetch;
}

/**
 * A fetch that trusts the CAs of `bundle` for the server, and presents no certificate: a node's calls to a broker
 * whose certificate a private CA issued (QSTASH_CA_FILE). On Bun they are the only CAs trusted; on Deno they are
 * added to its default roots (see `denoFetch`). Read on every call, as in `mtlsFetch`.
 */
export function caFetch(bundle: WatchedFiles<string>): typeof fetch {
  const deno = (globalThis as { Deno?: DenoHttpClients }).Deno;
  if (deno?.createHttpClient) return denoFetch(deno, bundle, (ca) => ({ caCerts: [ca] }));
  const bound = (input: string | URL | Request, init?: BunFetchRequestInit) =>
    fetch(input, { ...init, tls: { ...init?.tls, ca: bundle.current() } });
  return Object.assign(bound, { preconnect: fetch.preconnect }) as typeof fetch;
}

/** The part of Deno's API that gives a fetch its TLS settings: an HTTP client per TLS configuration. */
interface DenoHttpClients {
  createHttpClient(options: DenoClientOptions): { close(): void };
}
interface DenoClientOptions {
  cert?: string;
  key?: string;
  caCerts?: string[];
}

/**
 * On Deno, fetch takes a certificate and CAs through an HTTP client: one per rotation. The previous client is closed
 * once calls begun on it have had time to finish (the request timeout's order of magnitude). Its `caCerts` are
 * trusted in addition to Deno's default roots, which no option removes: unlike on Bun, a publicly trusted
 * certificate for the server's name is accepted too (SECURITY.md, "Not defended").
 */
function denoFetch<T>(
  deno: DenoHttpClients,
  files: WatchedFiles<T>,
  optionsOf: (value: T) => DenoClientOptions,
): typeof fetch {
  const clientFor = (value: T) => deno.createHttpClient(optionsOf(value));
  let client = clientFor(files.current());
  files.onChange((value) => {
    const retired = client;
    client = clientFor(value);
    setTimeout(() => retired.close(), 30_000);
  });
  const bound = (input: string | URL | Request, init?: RequestInit) =>
    fetch(input, { ...init, client } as RequestInit);
  return bound as typeof fetch;
}
