/**
 * A commercial node's service "commercial" over real TLS on loopback: four
 * nodes started with startNode (127.<i>.0.1), the last one serving the demo
 * plugin (node/src/commercial/examples/demo-kv.ts) for application
 * acme.shop. A client reaches it through a 3-hop circuit and through a
 * 1-hop one (the "direct" mode), gets answers from request and duplex
 * services, and meets typed refusals for another application, an unknown
 * service, a missing or forged identity, a replayed proof, a malformed open,
 * an oversized request and a spent budget, while the node keeps serving.
 * Identities are checked with real access certificates (authority keys made
 * here, verifyAccessCertificate), no mocks.
 */
import { randomBytes } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Address } from "viem";
import { applicationId } from "../../node/src/chain/attestation.js";
import { assembleCertificate, buildCertificateBody, signCertificateBody, verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import { CommercialError } from "../../node/src/commercial/errors.js";
import { COMMERCIAL_SERVICE, decodeOpenReply, encodeOpen, signOpenProof } from "../../node/src/commercial/messages.js";
import { openCommercial } from "../../node/src/commercial/client.js";
import type { CommercialConnection } from "../../node/src/commercial/client.js";
import { checkPlugin } from "../../node/src/commercial/plugin.js";
import type { DuplexIo } from "../../node/src/commercial/plugin.js";
import { createCommercialServer } from "../../node/src/commercial/server.js";
import type { CommercialServer } from "../../node/src/commercial/server.js";
import * as demo from "../../node/src/commercial/examples/demo-kv.js";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/index.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { OnionClientHandle } from "../../node/src/onion/onion-client.js";
import { kindOfAsync } from "../helpers/index.js";

const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`commercial-circuit/${label}`));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const kind = (fn: () => Promise<unknown>) => kindOfAsync(fn, CommercialError);

const APP = Uint8Array.from(Buffer.from(applicationId("acme", "shop").slice(2), "hex"));
const LATER_APP = Uint8Array.from(Buffer.from(applicationId("acme", "later").slice(2), "hex"));
const OTHER_APP = Uint8Array.from(Buffer.from(applicationId("acme", "other").slice(2), "hex"));
const REGISTRY = "0x00000000000000000000000000000000000000aa" as Address;
const authority = secret("authority");
const userKey = secret("user");
const nodes: RunningNode[] = [];
let credentials: TlsCredentials;
let client: OnionClientHandle;
let server: CommercialServer;
let commercialNode: RunningNode;

function certificateFor(namespace: string, application: string, key = userKey): Uint8Array {
  const now = Math.floor(Date.now() / 1000);
  const identity = formatIdentity({ namespace, application, kind: "account", publicKey: ed25519PublicKey(key) });
  const { bodyBytes } = buildCertificateBody({ identity, chainId: 31337, registry: REGISTRY, notBefore: now - 60, notAfter: now + 3600 });
  return assembleCertificate(bodyBytes, [signCertificateBody(bodyBytes, authority)]);
}

async function startRelay(i: number, services: Record<string, ReturnType<typeof createCommercialServer>["service"]> = {}): Promise<RunningNode> {
  const node = await startNode(
    { listen: { host: `127.${i + 1}.0.1`, port: 0 }, identity: { secretKeyHex: hexOf(secret(`node-${i}`)) }, api: false, dht: { staticDifficulty: 0 } },
    { tlsCredentials: credentials, services },
  );
  nodes.push(node);
  return node;
}

beforeAll(async () => {
  credentials = await generateTlsCredentials();
  for (let i = 0; i < 3; i++) await startRelay(i);
  const ref: { node?: RunningNode } = {};
  server = createCommercialServer({
    nodeIdentity: ed25519PublicKey(secret("node-3")),
    applications: [
      { appId: APP, name: "acme.shop", plugin: checkPlugin(demo, "demo-kv") },
      // A duplex service that answers later (a timer): its messages leave without waiting for other traffic.
      {
        appId: LATER_APP,
        name: "acme.later",
        plugin: checkPlugin({
          services: { later: { mode: "duplex", open: (io: DuplexIo) => ({ onMessage: (m: Uint8Array) => void setTimeout(() => io.send(m), 5) }) } },
        }),
      },
    ],
    limits: { maxMessageBytes: 4096, requestsPerMinute: 60, burst: 40 },
    verifyCertificate: (cert) => {
      const v = verifyAccessCertificate(cert, { now: Date.now(), authorities: [ed25519PublicKey(authority)], threshold: 1 });
      return { identity: v.identity, key: v.key };
    },
    flush: () => ref.node?.driver.run(() => undefined),
  });
  commercialNode = await startRelay(3, { [COMMERCIAL_SERVICE]: server.service });
  ref.node = commercialNode;
  client = await createOnionClient({ nodes: nodes.map((n) => n.pathNode) });
}, 60_000);

afterAll(async () => {
  await client?.close();
  for (const n of nodes) await n.close();
});

async function connect(service: string, options: { hops?: 1 | 3; app?: Uint8Array; identity?: boolean } = {}): Promise<CommercialConnection> {
  const circuit =
    options.hops === 1 ? await client.buildCircuit({ path: [commercialNode.pathNode] }) : await client.buildCircuit({ lastHop: commercialNode.pathNode });
  expect(circuit.path).toHaveLength(options.hops ?? 3);
  const stream = await circuit.openStream(COMMERCIAL_SERVICE);
  void stream.closed.then(() => circuit.close());
  return await openCommercial(stream, {
    appId: options.app ?? APP,
    service,
    node: commercialNode.pathNode.identity,
    ...(options.identity ? { identity: { secretKey: userKey, certificate: certificateFor("acme", "shop") } } : {}),
  });
}

describe("commercial service through circuits", () => {
  it("answers kv and echo requests through a 3-hop circuit, and through a 1-hop one", async () => {
    const kv = await connect("kv");
    expect(kv.mode).toBe("request");
    expect(JSON.parse(text(await kv.request(utf8(JSON.stringify({ op: "put", key: "a", value: "1" })))))).toEqual({ ok: true });
    expect(JSON.parse(text(await kv.request(utf8(JSON.stringify({ op: "get", key: "a" })))))).toEqual({ ok: true, value: "1" });
    kv.close();
    const echo = await connect("echo", { hops: 1 });
    expect(text(await echo.request(utf8("direct")))).toBe("direct");
    echo.close();
  });

  it("runs a duplex service", async () => {
    const ticker = await connect("ticker");
    expect(ticker.mode).toBe("duplex");
    const got: string[] = [];
    const two = new Promise<void>((resolve) =>
      ticker.on("message", (m) => {
        got.push(text(m));
        if (got.length === 2) resolve();
      }),
    );
    await ticker.send(utf8("x"));
    await ticker.send(utf8("y"));
    await two;
    expect(got).toEqual(["1:x", "2:y"]);
    ticker.close();
  });

  it("sends a duplex service's messages made outside the relay's round", async () => {
    const later = await connect("later", { app: LATER_APP });
    const got = new Promise<string>((resolve) => later.once("message", (m) => resolve(text(m))));
    await later.send(utf8("after a timer"));
    expect(await got).toBe("after a timer");
    later.close();
  });

  it("refuses another application and an unknown service with typed reasons", async () => {
    expect(await kind(() => connect("kv", { app: OTHER_APP }))).toBe("unknown-application");
    expect(await kind(() => connect("nope"))).toBe("unknown-service");
    expect(server.stats.refusals["unknown-application"]).toBeGreaterThanOrEqual(1);
  });

  it("asks for an identity where the service needs one, and checks the proof", async () => {
    expect(await kind(() => connect("counter"))).toBe("needs-identity");
    const counter = await connect("counter", { identity: true });
    expect(Number(text(await counter.request(new Uint8Array(0))))).toBeGreaterThanOrEqual(1);
    counter.close();
    // A certificate of another application's identity.
    const circuit = await client.buildCircuit({ lastHop: commercialNode.pathNode });
    const stream = await circuit.openStream(COMMERCIAL_SERVICE);
    const wrongApp = openCommercial(stream, {
      appId: APP,
      service: "counter",
      node: commercialNode.pathNode.identity,
      identity: { secretKey: userKey, certificate: certificateFor("acme", "other") },
    });
    expect(await kind(() => wrongApp)).toBe("bad-certificate");
    circuit.close();
  });

  it("refuses a replayed or misbound open proof", async () => {
    const proof = signOpenProof({
      secretKey: userKey,
      cert: certificateFor("acme", "shop"),
      node: commercialNode.pathNode.identity,
      app: APP,
      service: "counter",
      ts: Date.now(),
      nonce: new Uint8Array(randomBytes(16)),
    });
    const send = async (open: Uint8Array) => {
      const circuit = await client.buildCircuit({ lastHop: commercialNode.pathNode });
      try {
        const stream = await circuit.openStream(COMMERCIAL_SERVICE);
        await stream.send(open);
        return decodeOpenReply(await stream.receive());
      } finally {
        circuit.close();
      }
    };
    expect((await send(encodeOpen({ app: APP, service: "counter", proof }))).t).toBe("ok");
    expect(await send(encodeOpen({ app: APP, service: "counter", proof }))).toMatchObject({ t: "refused", kind: "replayed" });
    // The same proof presented for another service does not verify.
    expect(await send(encodeOpen({ app: APP, service: "kv", proof: { ...proof, nonce: new Uint8Array(randomBytes(16)) } }))).toMatchObject({
      t: "refused",
      kind: "bad-certificate",
    });
  });

  it("answers malformed and oversized input with typed errors and keeps serving", async () => {
    const circuit = await client.buildCircuit({ lastHop: commercialNode.pathNode });
    const stream = await circuit.openStream(COMMERCIAL_SERVICE);
    await stream.send(utf8("not cbor at all"));
    expect(decodeOpenReply(await stream.receive())).toMatchObject({ t: "refused", kind: "malformed" });
    circuit.close();

    const kv = await connect("kv");
    expect(await kind(() => kv.request(new Uint8Array(5000)))).toBe("too-large");
    // The plugin's own refusal of a bad request travels typed too.
    expect(await kind(() => kv.request(utf8("{bad json")))).toBe("refused");
    expect(JSON.parse(text(await kv.request(utf8(JSON.stringify({ op: "get", key: "a" })))))).toEqual({ ok: true, value: "1" });
    kv.close();
  });

  it("rate-limits one client (one circuit) and says when to retry", async () => {
    const echo = await connect("echo");
    let limited: CommercialError | undefined;
    for (let i = 0; i < 80 && !limited; i++) {
      try {
        await echo.request(utf8(`${i}`));
      } catch (err) {
        if (!(err instanceof CommercialError)) throw err;
        limited = err;
      }
    }
    expect(limited?.kind).toBe("rate-limited");
    echo.close();
    // Another client (another circuit) still gets answers.
    const other = await connect("echo");
    expect(text(await other.request(utf8("still here")))).toBe("still here");
    other.close();
  });
});
