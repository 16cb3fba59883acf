// Mutual TLS on Bun: which clients the actor host's listener refuses, which servers the gateway refuses, and rotation.
//
// A peer's role is the CA that issued its certificate: Bun cannot show the client certificate to a handler
// (bun#14097), so a client-cert SAN cannot be checked and the listener trusts only the gateway and broker CAs.
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type PeerCertificate, checkServerIdentity } from "node:tls";
import { Hono } from "hono";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { RemoteActorHost } from "../../actors/hosts/remote/client.ts";
import { bunServe } from "../../deploy/bun/serve.ts";
import { type CertFiles, type LeafOptions, issueCert, makeCa } from "../../deploy/local/certs/openssl.ts";
import type { RunningServer } from "../../deploy/serve.ts";
import { type TlsFiles, mtlsFetch, watchTlsFiles } from "../../deploy/tls.ts";
import { actorHostRoutes } from "../../edge/routes/actor-host.ts";
import { eventually } from "../commerce/client.ts";
import { attackCategory } from "./report.ts";

const cases = attackCategory("mtls");
const dir = mkdtempSync(join(tmpdir(), "edgewise-mtls-"));
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const day = 86_400_000;
const file = (name: string): CertFiles => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });
const ca = (name: string) => makeCa({ ...file(`${name}-ca`), commonName: `Edgewise ${name} CA` });
const leaf = (name: string, options: Omit<LeafOptions, "cert" | "key" | "commonName">) =>
  issueCert({ ...file(name), commonName: `edgewise ${name}`, ...options });
const pem = (path: string) => readFileSync(path, "utf8");

const gatewayCa = ca("gateway");
const brokerCa = ca("broker");
const actorHostCa = ca("actor-host");
const rogueCa = ca("rogue");
const clientsBundle = join(dir, "actor-host-clients-ca.pem");
await Bun.write(clientsBundle, pem(gatewayCa.cert) + pem(brokerCa.cert));
const local = ["DNS:localhost", "IP:127.0.0.1"];
const server = leaf("actor-host", { ca: actorHostCa, sans: local, usage: ["serverAuth"] });
const gateway = leaf("gateway", { ca: gatewayCa, usage: ["clientAuth"] });
const broker = leaf("broker", { ca: brokerCa, usage: ["clientAuth"] });

/** A TLS listener that counts handler invocations: a refused handshake must leave the count unchanged. */
async function listener(cert: CertFiles, requireClientCert = true) {
  const files = watchTlsFiles({ ...cert, ca: clientsBundle });
  let handled = 0;
  const running = await bunServe({
    port: 0,
    hostname: "127.0.0.1",
    fetch: () => {
      handled += 1;
      return new Response("ok");
    },
    tls: { files, requireClientCert },
  });
  cleanups.push(
    () => running.stop(true),
    () => files.close(),
  );
  return { port: running.port, handled: () => handled };
}

const main = await listener(server);

/** A gateway-style request: a client cert, trusting only the actor-host CA, SAN checked against the URL host. */
function call(port: number, client: CertFiles | undefined, trust = actorHostCa.cert, host = "127.0.0.1") {
  return fetch(`https://${host}:${port}/`, {
    tls: { ...(client ? { cert: pem(client.cert), key: pem(client.key) } : {}), ca: pem(trust) },
  });
}
interface Outcome {
  refused: boolean;
  status?: number;
  code?: string;
}
const refused = (request: Promise<Response>): Promise<Outcome> =>
  request.then(
    (response) => ({ refused: false, status: response.status }),
    (error: { code?: string }) => ({ refused: true, code: String(error.code) }),
  );

describe("mutual TLS: the actor host's listener", () => {
  test("control: gateway and broker client certs are served (not counted as attacks)", async () => {
    for (const client of [gateway, broker]) {
      const response = await call(main.port, client);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe("ok");
    }
    expect(main.handled()).toBe(2);
  });

  const clientCases: [string, () => CertFiles | undefined][] = [
    ["no client certificate is refused at the handshake", () => undefined],
    [
      "a client cert from an unknown CA is refused",
      () => leaf("rogue-client", { ca: rogueCa, usage: ["clientAuth"] }),
    ],
    [
      // The role is the CA: client-cert SANs cannot be checked on Bun (bun#14097), so the CA is all there is.
      "a client cert from the actor-host role CA (wrong role) is refused; client-cert SANs cannot be checked on Bun (bun#14097), so the role is the CA",
      () => leaf("actor-host-as-client", { ca: actorHostCa, sans: local, usage: ["clientAuth"] }),
    ],
    [
      "an expired client cert from the right CA is refused",
      () =>
        leaf("expired-client", {
          ca: gatewayCa,
          usage: ["clientAuth"],
          notBefore: new Date(Date.now() - 3 * day),
          notAfter: new Date(Date.now() - day),
        }),
    ],
    [
      "a not-yet-valid client cert from the right CA is refused",
      () =>
        leaf("future-client", {
          ca: gatewayCa,
          usage: ["clientAuth"],
          notBefore: new Date(Date.now() + day),
          notAfter: new Date(Date.now() + 3 * day),
        }),
    ],
  ];
  for (const [name, client] of clientCases) {
    test(name, async () => {
      const before = main.handled();
      const outcome = await refused(call(main.port, client()));
      const closed = outcome.refused && main.handled() === before;
      cases.tried(name, closed);
      expect(outcome.refused).toBe(true);
      expect(main.handled()).toBe(before);
    });
  }

  test("plain HTTP to the TLS port is refused", async () => {
    const before = main.handled();
    const outcome = await refused(fetch(`http://127.0.0.1:${main.port}/`));
    const closed = (outcome.refused || outcome.status === 400) && main.handled() === before;
    cases.tried("plain HTTP to the TLS port", closed);
    expect(closed).toBe(true);
  });
});

describe("mutual TLS: the gateway refuses a wrong server", () => {
  const serverCases: [string, string, () => CertFiles][] = [
    [
      "a server cert whose SAN does not name the URL host",
      "ERR_TLS_CERT_ALTNAME_INVALID",
      () => leaf("wrong-san", { ca: actorHostCa, sans: ["DNS:elsewhere.test"], usage: ["serverAuth"] }),
    ],
    [
      "a server cert from an unknown CA",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      () => leaf("rogue-server", { ca: rogueCa, sans: local, usage: ["serverAuth"] }),
    ],
    [
      "an expired server cert",
      "CERT_HAS_EXPIRED",
      () =>
        leaf("expired-server", {
          ca: actorHostCa,
          sans: local,
          usage: ["serverAuth"],
          notBefore: new Date(Date.now() - 3 * day),
          notAfter: new Date(Date.now() - day),
        }),
    ],
  ];
  for (const [name, code, cert] of serverCases) {
    test(`${name} is refused by the client`, async () => {
      const impostor = await listener(cert());
      const outcome = await refused(call(impostor.port, gateway));
      const closed = outcome.refused && impostor.handled() === 0;
      cases.tried(`server: ${name}`, closed);
      expect(outcome).toEqual({ refused: true, code });
      expect(impostor.handled()).toBe(0);
    });
  }
});

describe("mutual TLS: certificate files", () => {
  test("a missing or mismatched file fails at start, naming it; a half-written rotation is not applied", async () => {
    const missing = join(dir, "missing.pem");
    expect(() => watchTlsFiles({ cert: missing, key: gateway.key })).toThrow(missing);
    expect(() => watchTlsFiles({ cert: gateway.cert, key: broker.key })).toThrow(broker.key);
    expect(() => watchTlsFiles({ cert: gateway.cert, key: gateway.key, ca: gateway.key })).toThrow(
      gateway.key,
    );

    const paths = leaf("watched", { ca: gatewayCa, usage: ["clientAuth"] });
    const errors: unknown[] = [];
    const files = watchTlsFiles(paths, { pollMs: 50, onError: (error) => errors.push(error) });
    cleanups.push(() => files.close());
    const changes: string[] = [];
    files.onChange((material) => changes.push(material.cert));
    const before = files.current();
    const next = leaf("watched-next", { ca: gatewayCa, usage: ["clientAuth"] });
    // The key lands first: the pair does not match yet, so the old material stays. The watcher polls every 50 ms,
    // later on a loaded machine: wait for its word on the new key, not a fixed 200 ms.
    await Bun.write(paths.key, pem(next.key));
    await eventually(() => errors.length > 0, "the watcher to read the new key");
    expect(files.current()).toBe(before);
    expect(changes).toEqual([]);
    expect(String(errors[0])).toContain("does not match");
    await Bun.write(paths.cert, pem(next.cert));
    await eventually(() => changes.length > 0, "the watcher to apply the new pair");
    expect(files.current().cert).toBe(pem(next.cert));
    expect(changes).toEqual([pem(next.cert)]);
  });
});

describe("mutual TLS: rotation under load", () => {
  test("certificates rewritten on disk mid-load: no request fails, new connections see the new cert", async () => {
    const secret = "actor-host-secret-for-mtls-0123456789";
    const serverCert = leaf("rot-server", { ca: actorHostCa, sans: local, usage: ["serverAuth"] });
    // The first client cert expires soon after the rotation: a new connection that succeeds later proves the
    // client presents the rotated one.
    const oldClientExpires = new Date(Math.ceil((Date.now() + 2_500) / 1000) * 1000);
    const clientCert = leaf("rot-client", {
      ca: gatewayCa,
      usage: ["clientAuth"],
      notAfter: oldClientExpires,
    });
    const oldClient = { cert: pem(clientCert.cert), key: pem(clientCert.key) };
    const oldServerSerial = new X509Certificate(pem(serverCert.cert)).serialNumber;

    const actors = new LocalActorHost({
      actors: [counterActor],
      db: openBunSqlite(join(dir, "actors.db")),
      onBackgroundError: () => {},
    });
    cleanups.push(() => actors.stop());
    const app = new Hono();
    app.get("/probe", (c) => c.text("ok"));
    const routes = actorHostRoutes({ actors, secret });
    const serverFiles = watchTlsFiles({ ...serverCert, ca: clientsBundle }, { pollMs: 200 });
    const running: RunningServer = await bunServe({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (request) =>
        new URL(request.url).pathname === "/probe" ? app.fetch(request) : routes.fetch(request),
      tls: { files: serverFiles, requireClientCert: true },
    });
    const clientFiles: TlsFiles = watchTlsFiles({ ...clientCert, ca: actorHostCa.cert }, { pollMs: 200 });
    cleanups.push(
      () => running.stop(true),
      () => serverFiles.close(),
      () => clientFiles.close(),
    );
    const clientFetch = mtlsFetch(clientFiles);
    const remote = new RemoteActorHost({
      baseUrl: `https://127.0.0.1:${running.port}`,
      secret,
      fetch: clientFetch,
    });

    // A probe opens a connection of its own (Bun does so for a request with its own checkServerIdentity).
    const probes: { at: number; serial: string }[] = [];
    const probe = async () => {
      const at = Date.now();
      let serial = "";
      const response = await clientFetch(`https://127.0.0.1:${running.port}/probe`, {
        tls: {
          checkServerIdentity: (host: string, cert: PeerCertificate) => {
            serial = cert.serialNumber.toUpperCase();
            return checkServerIdentity(host, cert);
          },
        },
      });
      expect(await response.text()).toBe("ok");
      probes.push({ at, serial });
      return serial;
    };
    expect(await probe()).toBe(oldServerSerial);

    const replies: number[] = [];
    const failures: unknown[] = [];
    const inFlight: Promise<void>[] = [];
    const started = Date.now();
    let rotatedAt = 0;
    let newServerSerial = "";
    let sent = 0;
    while (Date.now() - started < 3_000) {
      sent += 1;
      inFlight.push(
        remote.ask({ type: "counter", key: "rotation" }, "Increment", { by: 1 }).then(
          (outcome) => void replies.push((outcome.reply as { count: number }).count),
          (error) => void failures.push(error),
        ),
      );
      if (sent % 10 === 0)
        inFlight.push(
          probe().then(
            () => {},
            (error) => void failures.push(error),
          ),
        );
      if (rotatedAt === 0 && Date.now() - started >= 1_000) {
        rotatedAt = Date.now();
        // As `npm run certs` does: fresh leaves over the same paths, each file renamed into place.
        issueCert({
          ...serverCert,
          ca: actorHostCa,
          commonName: "edgewise actor-host",
          sans: [...local, "DNS:rotated.test"],
          usage: ["serverAuth"],
        });
        issueCert({ ...clientCert, ca: gatewayCa, commonName: "edgewise gateway", usage: ["clientAuth"] });
        newServerSerial = new X509Certificate(pem(serverCert.cert)).serialNumber;
      }
      await Bun.sleep(10);
    }
    await Promise.all(inFlight);
    // After the old client cert expired, a new connection still works: it presents the rotated client cert.
    await Bun.sleep(Math.max(0, oldClientExpires.getTime() - Date.now() + 100));
    expect(await probe()).toBe(newServerSerial);
    const withOldClient = await refused(
      fetch(`https://127.0.0.1:${running.port}/probe`, { tls: { ...oldClient, ca: pem(actorHostCa.cert) } }),
    );
    expect(withOldClient.refused).toBe(true);

    const firstNew = probes.find((p) => p.serial === newServerSerial);
    const lastOld = probes.findLast((p) => p.serial === oldServerSerial);
    console.log(
      `[mtls] rotation under load: ${sent} requests, ${failures.length} failed; new server cert on new connections ${
        firstNew ? firstNew.at - rotatedAt : "never"
      } ms after the files were rewritten (${probes.length} probes)`,
    );
    expect(failures).toEqual([]);
    expect(replies).toHaveLength(sent);
    // Every request answered once and applied once: the replies are exactly 1..sent.
    expect(new Set(replies).size).toBe(sent);
    expect(Math.max(...replies)).toBe(sent);
    expect(actors.inspect({ type: "counter", key: "rotation" }).state).toEqual({ count: sent });
    expect(firstNew).toBeDefined();
    // Once a new connection saw the new cert, none begun after the overlap saw the old one: it was retired.
    expect(lastOld === undefined || (firstNew !== undefined && lastOld.at <= firstNew.at + 1_000)).toBe(true);
    expect(clientFiles.current().cert).not.toBe(oldClient.cert);
  }, 15_000);
});

describe("a gateway on Deno", () => {
  // As during a CA rotation (SECURITY.md): TLS_CA_FILE holds two actor-host CAs, the one that issued the host's
  // certificate second. Deno's createHttpClient must read every certificate of the bundle, not only the first.
  const rotationBundle = join(dir, "actor-host-ca-bundle.pem");
  writeFileSync(rotationBundle, pem(ca("actor-host-next").cert) + pem(actorHostCa.cert));

  /** Runs deno-mtls-probe.ts: Deno's fetch takes the certificate through Deno.createHttpClient. */
  async function denoProbe(url: string, client: CertFiles): Promise<string> {
    const root = join(import.meta.dir, "../..");
    // Not spawnSync: the listener runs in this process and must keep answering.
    const run = Bun.spawn(
      [
        join(root, "node_modules/.bin/deno"),
        "run",
        "--allow-all",
        join(import.meta.dir, "deno-mtls-probe.ts"),
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          PROBE_URL: url,
          PROBE_CERT: client.cert,
          PROBE_KEY: client.key,
          PROBE_CA: rotationBundle,
        },
        stdout: "pipe",
      },
    );
    const output = await new Response(run.stdout).text();
    await run.exited;
    return output.trim();
  }

  test("presents its certificate through mtlsFetch, trusting a CA bundle; a certificate of the wrong role is refused", async () => {
    const { port, handled } = await listener(server);
    const url = `https://127.0.0.1:${port}/from-deno`;
    expect(await denoProbe(url, gateway)).toBe("status 200 ok");
    const wrongRole = await denoProbe(url, server);
    cases.tried("Deno client with an actor-host certificate", wrongRole.startsWith("refused"));
    expect(wrongRole).toStartWith("refused");
    expect(handled()).toBe(1);
  }, 30_000);
});
