/**
 * The presence layer on a real network of seven nodes in this process
 * (TLS links on loopback, three discovery nodes voting every 2 s, DHT in
 * SQLite), with every node's services and every cell on every link
 * recorded, so the test can say what each node saw:
 *
 * - privacy: only the presence node ever sees a user's identity, and it
 *   got the registration from a relay, never from the user; the rendezvous
 *   node sees neither identity; no cell on any link carries an identity in
 *   the clear (so no entrance node sees it);
 * - refusals with typed reasons: a replayed introduction, an introduction
 *   with an expired certificate, forged and replayed registrations;
 * - caps and cancellation under a flood of introductions;
 * - a presence node dying: the peer is still reached through another point.
 *
 * Certificates are signed by a test authority key (this network has no
 * chain); the nodes and clients check them against it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleCertificate, buildCertificateBody, signCertificateBody, verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import { ed25519PublicKey, generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { createCircuitDhtClient } from "../../node/src/dht/proxy.js";
import type { CircuitDhtClient } from "../../node/src/dht/proxy.js";
import { consensusToPathNodes } from "../../node/src/directory/path-nodes.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { DestroyReason } from "../../node/src/onion/constants.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { OnionCircuit, OnionClientHandle } from "../../node/src/onion/onion-client.js";
import type { PathNode } from "../../node/src/onion/path.js";
import type { LocalService, ServiceHandler, ServiceStream } from "../../node/src/onion/types.js";
import { PresenceClient } from "../../node/src/presence/client.js";
import type { IncomingIntroduction } from "../../node/src/presence/client.js";
import { PresenceError } from "../../node/src/presence/errors.js";
import { buildIntroduction } from "../../node/src/presence/introduction.js";
import {
  decodeIntroduceReply,
  decodePresenceNotice,
  encodeIntroduceRequest,
  encodePresenceRequest,
  registrationSigningPayload,
} from "../../node/src/presence/messages.js";
import type { PresenceRequest } from "../../node/src/presence/messages.js";
import { presencePeriod, signPresenceRecord } from "../../node/src/presence/record.js";
import { ed25519Sign } from "../../node/src/crypto/ed25519.js";
import { freePort } from "../helpers/index.js";

const dir = mkdtempSync(join(tmpdir(), "psp-presence-net-"));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`presence-network/${label}`));
const schedule = { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 };
const names = ["discovery-1", "discovery-2", "discovery-3", "onion-1", "onion-2", "onion-3", "onion-4"];
const hostOf = (i: number): string => `127.${i + 21}.0.1`;
const nodes: RunningNode[] = [];
const nameOf = new Map<string, string>();

/** What nodes saw at the edge of circuits, and every cell on every link. */
interface Observation {
  node: string;
  service: string;
  previousHop: string | null;
  direction: "in" | "out";
  bytes: Uint8Array;
}
const observations: Observation[] = [];
const cells: { from: string; bytes: Uint8Array }[] = [];

const authority = generateEd25519KeyPair();
const REGISTRY = "0x00000000000000000000000000000000000000aa" as const;
function mintCertificate(identity: string, offsetSeconds = 0): { bytes: Uint8Array; notAfter: number } {
  const now = Math.floor(Date.now() / 1000) + offsetSeconds;
  const { body, bodyBytes } = buildCertificateBody({ identity, chainId: 31337, registry: REGISTRY, notBefore: now - 60, notAfter: now + 3600 - 60 });
  return { bytes: assembleCertificate(bodyBytes, [signCertificateBody(bodyBytes, authority.secretKey)]), notAfter: body.notAfter };
}
const verifyCertificate = (cert: Uint8Array) => verifyAccessCertificate(cert, { now: Date.now(), authorities: [authority.publicKey], threshold: 1 });

function observe(node: string) {
  return (service: string, inner: LocalService): LocalService =>
    (stream, now) => {
      const previousHop = stream.previousHop ? hex(stream.previousHop) : null;
      const record = (direction: "in" | "out", bytes: Uint8Array) => observations.push({ node, service, previousHop, direction, bytes: bytes.slice() });
      const wrapped: ServiceStream = Object.create(stream) as ServiceStream;
      Object.defineProperty(wrapped, "send", {
        value: (message: Uint8Array) => {
          record("out", message);
          stream.send(message);
        },
      });
      const handler = inner(wrapped, now);
      if (typeof handler === "number") return handler;
      const observed: ServiceHandler = {
        onMessage: (message, t) => {
          record("in", message);
          handler.onMessage(message, t);
        },
        ...(handler.onEnd ? { onEnd: (reason, t) => handler.onEnd!(reason, t) } : {}),
        ...(handler.onDrain ? { onDrain: (t) => handler.onDrain!(t) } : {}),
      };
      return observed;
    };
}

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface User {
  name: string;
  identity: string;
  keys: { secretKey: Uint8Array; publicKey: Uint8Array };
  onion: OnionClientHandle;
  presence: PresenceClient;
  cert: { bytes: Uint8Array; notAfter: number };
}
const users: User[] = [];
let consensusNodes: PathNode[] = [];

/** A user with its own onion client and presence client; `certOffsetSeconds` dates its certificate (negative: expired). */
async function makeUser(name: string, certOffsetSeconds = 0): Promise<User> {
  const keys = generateEd25519KeyPair();
  const identity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey });
  const cert = mintCertificate(identity, certOffsetSeconds);
  const onion = await createOnionClient({
    nodes: consensusNodes,
    outboundHook: (cell) => {
      cells.push({ from: `client:${name}`, bytes: cell.payload.slice() });
      return cell;
    },
  });
  let dht: { circuit: OnionCircuit; client: CircuitDhtClient } | undefined;
  const dhtClient = async (): Promise<CircuitDhtClient> => {
    if (dht?.circuit.isOpen) return dht.client;
    const circuit = await onion.buildCircuit();
    dht = { circuit, client: createCircuitDhtClient(await circuit.openStream("dht")) };
    return dht.client;
  };
  // As PspClient does: a lookup whose circuit died under it is retried once on a new one.
  const dhtGetAll = async (key: Uint8Array) => {
    try {
      return await (await dhtClient()).getAll(key);
    } catch {
      dht?.circuit.close();
      dht = undefined;
      return await (await dhtClient()).getAll(key);
    }
  };
  const presence = new PresenceClient({
    identity: { text: identity, secretKey: keys.secretKey, publicKey: keys.publicKey },
    certificate: async () => cert,
    dhtGetAll,
    buildCircuit: (o) => (o.path ? onion.buildCircuit({ path: o.path }) : onion.buildCircuit(o.lastHop ? { lastHop: o.lastHop } : {})),
    nodes: () => consensusNodes.filter((n) => nodes.some((r) => r.info.identity === hex(n.identity))),
    verifyCertificate,
  });
  const user = { name, identity, keys, onion, presence, cert };
  users.push(user);
  return user;
}

beforeAll(async () => {
  const credentials = await generateTlsCredentials();
  const ports = await Promise.all(names.map((_, i) => freePort(hostOf(i))));
  const identities = names.map((n) => hex(ed25519PublicKey(secret(n))));
  names.forEach((n, i) => nameOf.set(identities[i]!, n));
  const discovery = [0, 1, 2].map((i) => ({ identity: identities[i]!, host: hostOf(i), port: ports[i]! }));
  const registry = Object.fromEntries(names.map((n, i) => [identities[i]!, n.startsWith("discovery") ? ["onion", "discovery"] : ["onion"]]));
  for (const [i, name] of names.entries()) {
    const isDiscovery = name.startsWith("discovery");
    const node = await startNode(
      {
        listen: { host: hostOf(i), port: ports[i] },
        identity: { secretKeyHex: hex(secret(name)) },
        roles: isDiscovery ? ["onion", "discovery"] : ["onion"],
        dataDir: join(dir, name),
        api: false,
        dht: { staticDifficulty: 0, dynamicDifficulty: 4, ...(i === 0 ? {} : { seeds: [discovery[0]!] }) },
        directory: { discovery, schedule, publishIntervalMs: 1000, retryMs: 500, country: "DE", ...(isDiscovery ? { registry } : {}) },
      },
      {
        tlsCredentials: credentials,
        verifyCertificate,
        wrapService: observe(name),
        outboundHook: (cell) => {
          cells.push({ from: name, bytes: cell.payload.slice() });
          return cell;
        },
      },
    );
    nodes.push(node);
  }
  const consensus = await waitFor("a consensus listing all seven nodes", () => {
    const c = nodes[3]!.directory?.current();
    return c && c.entries.length === names.length ? c : undefined;
  });
  consensusNodes = consensusToPathNodes(consensus);
  // The DHT tables fill from the consensus: wait until every node knows the others.
  await waitFor("full DHT tables", () => nodes.every((n) => n.dht.node.table.size >= names.length - 1));
}, 120_000);

afterAll(async () => {
  for (const u of users) {
    u.presence.close();
    await u.onion.close();
  }
  await Promise.all(nodes.map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

const contains = (haystack: Uint8Array, needle: Uint8Array): boolean => Buffer.from(haystack).indexOf(Buffer.from(needle)) >= 0;
const needlesOf = (u: User): Uint8Array[] => [u.keys.publicKey, new TextEncoder().encode(u.identity)];

function acceptAll(user: User): void {
  user.presence.on("introduction", (intro) => {
    // A rendezvous that never comes (a replayed or test introduction) fails the accept: expected here.
    intro.accept().then(
      async (channel) => {
        for await (const m of channel.messages()) await channel.send(`echo: ${m.text}`).catch(() => undefined);
      },
      () => undefined,
    );
  });
}

describe("presence on a seven-node network", () => {
  it("no node learns both who a user is and where: the privacy record of a whole conversation", async () => {
    const alice = await makeUser("alice");
    const carol = await makeUser("carol");
    acceptAll(alice);
    await alice.presence.announce({ points: 3 });
    await carol.presence.announce({ points: 2 });
    // announce resolves with the first point up; the others follow (or are retried on other nodes).
    await waitFor("alice's three points up", () => alice.presence.status().filter((p) => p.state === "up").length === 3, 60_000);
    const channel = await carol.presence.connect(alice.identity);
    const replies = channel.messages();
    await channel.send("who can read this?");
    expect((await replies.next()).value?.text).toBe("echo: who can read this?");
    channel.close();

    const presenceNodesOf = (u: User) => new Set(u.presence.status().map((p) => p.node));
    for (const user of [alice, carol]) {
      const needles = needlesOf(user);
      const seen = observations.filter((o) => needles.some((n) => contains(o.bytes, n)));
      // The presence nodes saw the identity (the registration names it) ...
      expect(seen.length).toBeGreaterThan(0);
      for (const o of seen) {
        // ... and only they, only on the presence service, and only from a relay: never from the user's own link.
        expect(o.service).toBe("presence");
        expect(presenceNodesOf(user).has(hex(ed25519PublicKey(secret(o.node))))).toBe(true);
        expect(o.previousHop).not.toBeNull();
      }
      // No cell on any link carries the identity in the clear: entrance and middle nodes never see it.
      expect(cells.some((c) => needles.some((n) => contains(c.bytes, n)))).toBe(false);
    }
    // Registrations reached their presence nodes through relays.
    for (const o of observations.filter((x) => x.service === "presence")) expect(o.previousHop).not.toBeNull();
    // The rendezvous node: both streams came from relays, and it saw neither identity.
    const rendezvous = observations.filter((o) => o.service === "rendezvous");
    expect(rendezvous.length).toBeGreaterThan(0);
    for (const o of rendezvous) {
      expect(o.previousHop).not.toBeNull();
      for (const n of [...needlesOf(alice), ...needlesOf(carol)]) expect(contains(o.bytes, n)).toBe(false);
    }
    // The introduction crossed the presence node encrypted: it never saw carol's identity.
    for (const o of observations.filter((x) => x.service === "introduce")) for (const n of needlesOf(carol)) expect(contains(o.bytes, n)).toBe(false);
  }, 120_000);

  it("refuses a replayed introduction and an introduction with an expired certificate, with typed reasons", async () => {
    const alice = users.find((u) => u.name === "alice")!;
    const carol = users.find((u) => u.name === "carol")!;
    const [point] = await carol.presence.lookup(alice.identity);
    const node = consensusNodes.find((n) => hex(n.identity) === hex(point!.node))!;
    const built = buildIntroduction({
      authKey: point!.authKey,
      encKey: point!.encKey,
      subcredential: point!.subcredential,
      identity: carol.identity,
      identitySecret: carol.keys.secretKey,
      cert: carol.cert.bytes,
      rdv: consensusNodes[0]!.identity,
      cookie: new Uint8Array(20).fill(7),
      now: Date.now(),
    });
    const bytes = encodeIntroduceRequest(built.request);
    const introduce = async () => {
      const circuit = await carol.onion.buildCircuit({ lastHop: node });
      try {
        const stream = await circuit.openStream("introduce");
        await stream.send(bytes);
        return decodeIntroduceReply(await stream.receive());
      } finally {
        circuit.close();
      }
    };
    const first = await introduce();
    // alice accepted it (she accepts everyone); its rendezvous never happens, which is the introducer's loss.
    expect(first.t).toBe("ack");
    const second = await introduce();
    expect(second).toMatchObject({ t: "refused", kind: "replayed" });

    const eve = await makeUser("eve", -2 * 3600);
    const refusedAtAlice = new Promise<PresenceError>((resolve) => alice.presence.once("bad-introduction", resolve));
    const attempt = await eve.presence.connect(alice.identity, { timeoutMs: 20_000 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(PresenceError.is(attempt)).toBe(true);
    const refusal = await refusedAtAlice;
    expect(refusal.kind).toBe("bad-certificate");
    expect(String((refusal.cause as Error | undefined)?.message)).toMatch(/expired/);
  }, 120_000);

  it("refuses forged and replayed registrations with typed reasons, publishing nothing", async () => {
    const carol = users.find((u) => u.name === "carol")!;
    const alice = users.find((u) => u.name === "alice")!;
    const node = consensusNodes.find((n) => nameOf.get(hex(n.identity)) === "onion-4")!;
    const register = (o: { identity?: User; certOf?: User; slot?: number; recordSlot?: number; signer?: Uint8Array; time?: number }): PresenceRequest => {
      const who = o.identity ?? carol;
      const wall = o.time ?? Date.now();
      const period = presencePeriod(wall, 1440);
      const auth = generateEd25519KeyPair();
      const record = signPresenceRecord({
        identitySecret: who.keys.secretKey,
        identityKey: who.keys.publicKey,
        period,
        periodLength: 1440,
        slot: o.recordSlot ?? o.slot ?? 5,
        point: { node: node.identity, authKey: auth.publicKey, encKey: generateEd25519KeyPair().publicKey, flags: 0, points: 1, issuedAt: wall },
        seq: wall,
        expiresAt: wall + 600_000,
      });
      const unsigned = {
        t: "register" as const,
        node: node.identity,
        identity: who.identity,
        cert: (o.certOf ?? who).cert.bytes,
        period,
        periodLength: 1440,
        slot: o.slot ?? 5,
        authKey: auth.publicKey,
        record,
        limits: { maxPending: 4, maxChannels: 100, introsPerSecond: 5, introBurst: 5 },
        time: wall,
        sig: new Uint8Array(64),
      };
      return { ...unsigned, sig: ed25519Sign(o.signer ?? who.keys.secretKey, registrationSigningPayload(unsigned)) };
    };
    const send = async (request: PresenceRequest | Uint8Array) => {
      const circuit = await carol.onion.buildCircuit({ lastHop: node });
      try {
        const stream = await circuit.openStream("presence");
        await stream.send(request instanceof Uint8Array ? request : encodePresenceRequest(request));
        return decodePresenceNotice(await stream.receive());
      } finally {
        circuit.close();
      }
    };
    const before = node ? nodes.find((n) => n.info.identity === hex(node.identity))!.presence.presence.stats.registered : 0;
    expect(await send(register({ certOf: alice }))).toMatchObject({ t: "refused", kind: "bad-certificate" });
    expect(await send(register({ signer: alice.keys.secretKey }))).toMatchObject({ t: "refused", kind: "bad-signature" });
    expect(await send(register({ recordSlot: 6 }))).toMatchObject({ t: "refused", kind: "record-invalid" });
    expect(await send(register({ time: Date.now() - 3600_000 }))).toMatchObject({ t: "refused", kind: "stale" });
    const holder = nodes.find((n) => n.info.identity === hex(node.identity))!;
    expect(holder.presence.presence.stats.registered).toBe(before);
    // A genuine registration is accepted once; the same bytes again are a replay.
    const genuine = encodePresenceRequest(register({}));
    expect(await send(genuine)).toMatchObject({ t: "registered" });
    expect(await send(genuine)).toMatchObject({ t: "refused", kind: "replayed" });
  }, 120_000);

  it("holds the user's caps under a flood: pending and channel caps, a notice, and cancellation tearing the route down", async () => {
    const dave = await makeUser("dave");
    const flooder = users.find((u) => u.name === "alice")!;
    const held: IncomingIntroduction[] = [];
    dave.presence.on("introduction", (intro) => held.push(intro));
    const caps: string[] = [];
    dave.presence.on("cap-reached", (c) => caps.push(c.cap));
    await dave.presence.announce({ points: 1, expandOnCap: false, limits: { maxPending: 2, maxChannels: 4, introsPerSecond: 100, introBurst: 100 } });
    const [point] = await flooder.presence.lookup(dave.identity);
    const node = consensusNodes.find((n) => hex(n.identity) === hex(point!.node))!;
    const introduce = async () => {
      const built = buildIntroduction({
        authKey: point!.authKey,
        encKey: point!.encKey,
        subcredential: point!.subcredential,
        identity: flooder.identity,
        identitySecret: flooder.keys.secretKey,
        cert: flooder.cert.bytes,
        rdv: consensusNodes[0]!.identity,
        cookie: crypto.getRandomValues(new Uint8Array(20)),
        now: Date.now(),
      });
      const circuit = await flooder.onion.buildCircuit({ lastHop: node });
      const stream = await circuit.openStream("introduce");
      await stream.send(encodeIntroduceRequest(built.request));
      return { circuit, reply: stream.receive().then(decodeIntroduceReply, (err: unknown) => err) };
    };
    // Two are delivered and wait for dave's answer; the next ones queue behind the pending cap.
    const first = await Promise.all([introduce(), introduce()]);
    await waitFor("two introductions at dave", () => held.length === 2);
    const queued = await Promise.all([introduce(), introduce(), introduce()]);
    await waitFor("the pending-cap notice", () => caps.includes("pending"));
    expect(held.length).toBe(2);
    // Cancelling one tears its introducer's circuit down at once; a queued one takes its place.
    held[0]!.cancel();
    const cancelled = await first[0]!.circuit.closed;
    expect(cancelled?.destroyReason).toBe(DestroyReason.REQUESTED);
    await waitFor("a queued introduction delivered", () => held.length === 3);
    held[1]!.refuse();
    expect(await first[1]!.reply).toMatchObject({ t: "refused", kind: "refused" });
    await waitFor("the fourth introduction delivered", () => held.length === 4);
    // Four channels is all dave allows at this point: the one still queued is refused, and dave hears of it once.
    await waitFor("the channel-cap notice", () => caps.includes("channels"));
    for (const intro of held.slice(2)) intro.refuse();
    const replies = await Promise.all(queued.map((q) => q.reply));
    expect(replies.filter((r) => (r as { kind?: string }).kind === "cap-reached").length).toBe(1);
    expect(replies.filter((r) => (r as { kind?: string }).kind === "refused").length).toBe(2);
    expect(caps.filter((c) => c === "channels").length).toBe(1);
    // A sixth introducer is refused at once.
    const sixth = await introduce();
    expect(await sixth.reply).toMatchObject({ t: "refused", kind: "cap-reached" });
    for (const q of [...first, ...queued, sixth]) q.circuit.close();
  }, 120_000);

  it("a user stays reachable when one of its presence nodes dies, and the lost point is replaced", async () => {
    const alice = users.find((u) => u.name === "alice")!;
    const carol = users.find((u) => u.name === "carol")!;
    const points = alice.presence.status().filter((p) => p.state === "up");
    // Kill a presence node that is not a discovery node, so the consensus keeps forming.
    const victim = points.map((p) => nodes.find((n) => n.info.identity === p.node)!).find((n) => !nameOf.get(n.info.identity)!.startsWith("discovery"));
    if (!victim) return; // all three points on discovery nodes: nothing safe to kill in this run
    const replaced = new Promise<void>((resolve) => alice.presence.on("point", (p) => p.state === "up" && p.node !== victim.info.identity && resolve()));
    await victim.close();
    const channel = await carol.presence.connect(alice.identity, { timeoutMs: 30_000 }).catch((err: unknown) => {
      throw new Error(`connect after the presence node died: ${err instanceof Error ? err.message : String(err)}`);
    });
    const replies = channel.messages();
    await channel.send("still there?");
    expect((await replies.next()).value?.text).toBe("echo: still there?");
    channel.close();
    await replaced;
    await waitFor("alice's three points up again", () => alice.presence.status().filter((p) => p.state === "up").length === 3, 60_000);
  }, 120_000);
});
