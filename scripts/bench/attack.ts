/**
 * Under attack (issue 19's figures): honest work measured idle and while
 * one of the attacks the per-class and per-source budgets are meant to
 * contain runs, in the same run, as a ratio:
 *
 * 1. 3-hop circuit builds while the middle relay receives a CREATE2 flood
 *    (valid onionskins) over another link, with the default relay limits;
 *    the ntor handshakes the relay computed against the cells sent;
 * 2. RPC requests over an authenticated node link while hundreds of
 *    anonymous links hold half-sent requests open (enough to fill the old
 *    node-wide budget of 1024 requests);
 * 3. signed DHT pings and node lookups among five DHT nodes while one
 *    attacker floods one of them with zero-signature pings (replay cache);
 * 4. how many anonymous links one source address gets with the loopback
 *    exemption off, against the per-source cap, and whether another
 *    source still links;
 * 5. consensus periods published by three discovery nodes (2-second voting
 *    periods) idle and while one source holds half-sent requests open on
 *    hundreds of anonymous links to every discovery node at once.
 *
 * Everything runs in this process on real TLS links on loopback (relays on
 * 127.<i>.0.1), so the attacker's CPU is this process's too: the ratios
 * include that cost. Run alone with `npx tsx scripts/bench.ts attack`.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { ed25519PublicKey, generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { ntorClientCreate } from "../../node/src/crypto/ntor.js";
import { encodeDhtMessage, DHT_PROTOCOL_VERSION } from "../../node/src/dht/messages.js";
import type { DhtRequest } from "../../node/src/dht/messages.js";
import { DHT_RPC_SERVICE } from "../../node/src/dht/link-transport.js";
import { createConnectionManager, generateTlsCredentials } from "../../node/src/link/index.js";
import type { ConnectionManager, Link, PeerAddress, TlsCredentials } from "../../node/src/link/index.js";
import { DEFAULT_ANONYMOUS_RPC_LIMITS, RpcCellKind, createLinkRpc, encodeRpcCells, serviceId } from "../../node/src/link/rpc.js";
import { DIRECTORY_SERVICE } from "../../node/src/directory/messages.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { DEFAULT_LIMITS, DestroyReason, HANDSHAKE_NTOR } from "../../node/src/onion/constants.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import { encodeCreate2 } from "../../node/src/onion/payloads.js";
import { CellCommand } from "../../node/src/wire/cell.js";
import type { Cell } from "../../node/src/wire/cell.js";
import { fmt, table } from "./types.js";
import type { BenchSection } from "./types.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: readonly number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN;
const p50 = (xs: readonly number[]) => quantile(xs, 0.5);
const p90 = (xs: readonly number[]) => quantile(xs, 0.9);
const peerOf = (n: RunningNode): PeerAddress => ({ identity: n.pathNode.identity, host: n.pathNode.host, port: n.pathNode.port });

/**
 * Runs `op` one at a time, each start at least `spacingMs` after the one before, until `minCount` ran and
 * `minMs` passed; returns latencies of successes and the failure count.
 */
async function measure(op: () => Promise<boolean>, minCount: number, minMs = 0, spacingMs = 0): Promise<{ ms: number[]; ok: number; failed: number }> {
  const ms: number[] = [];
  let failed = 0;
  const start = performance.now();
  let last = -Infinity;
  while (ms.length + failed < minCount || performance.now() - start < minMs) {
    const wait = last + spacingMs - performance.now();
    if (wait > 0) await sleep(wait);
    const t0 = (last = performance.now());
    const ok = await op().catch(() => false);
    if (ok) ms.push(performance.now() - t0);
    else failed++;
  }
  return { ms, ok: ms.length, failed };
}

// ---------------------------------------------------------------- 1. circuit builds under a CREATE2 flood

async function circuitsUnderCreateFlood(credentials: TlsCredentials) {
  const nodes: RunningNode[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  try {
    for (let i = 1; i <= 3; i++) {
      const node = await startNode({ listen: { host: `127.${20 + i}.0.1`, port: 0 }, onion: { services: ["echo"] } }, { tlsCredentials: credentials });
      nodes.push(node);
      cleanups.push(() => node.close());
    }
    const path = nodes.map((n) => n.pathNode);
    const middle = nodes[1] as RunningNode;
    const client = await createOnionClient({ nodes: path });
    cleanups.push(() => client.close());
    const build = async () => {
      const circuit = await client.buildCircuit({ path });
      void circuit.close();
      return true;
    };
    // An honest client builds 10 circuits a second: under the relays' per-link CREATE limit (50/s), which it shares with nobody.
    const BUILD_SPACING_MS = 100;
    await measure(build, 5, 0, BUILD_SPACING_MS); // warm-up: links open, JIT warm
    const idle = await measure(build, 50, 5000, BUILD_SPACING_MS);

    // The attacker: its own link to the middle relay, CREATE2 cells with valid onionskins (each would cost an ntor handshake).
    const attacker = await createConnectionManager({ identity: generateEd25519KeyPair(), tlsCredentials: credentials });
    cleanups.push(() => attacker.close());
    let destroys = 0;
    let created = 0;
    attacker.handle(CellCommand.DESTROY, () => void destroys++);
    // A circuit the relay accepts is destroyed at once, so the per-link circuit cap (256) never binds: only the CREATE rate limit stands in the way.
    attacker.handle(CellCommand.CREATED, (cell, on) => {
      created++;
      on.send({ circId: cell.circId, command: CellCommand.DESTROY, payload: new Uint8Array([DestroyReason.FINISHED]) });
    });
    const link: Link = await attacker.getLink(peerOf(middle));
    const skins = Array.from({ length: 64 }, () =>
      encodeCreate2({
        handshakeType: HANDSHAKE_NTOR,
        handshakeData: ntorClientCreate({ id: middle.pathNode.identity, onionPublic: middle.pathNode.onionKey }).onionskin,
      }),
    );
    let sent = 0;
    let flooding = true;
    const before = middle.relay.stats();
    const floodStart = performance.now();
    const flood = (async () => {
      // About 1,500 CREATE2 a second, 30 every 20 ms, for as long as the honest builds run.
      while (flooding && link.isOpen) {
        const batch: Cell[] = [];
        for (let i = 0; i < 30; i++, sent++)
          batch.push({ circId: (0x8000_0001 + sent) >>> 0, command: CellCommand.CREATE, payload: skins[sent % skins.length] as Uint8Array });
        link.sendMany(batch);
        await sleep(20);
      }
    })();
    await sleep(300);
    const attacked = await measure(build, 50, 5000, BUILD_SPACING_MS);
    flooding = false;
    await flood;
    const floodSeconds = (performance.now() - floodStart) / 1000;
    await sleep(300); // the last cells' answers
    const after = middle.relay.stats();
    // The most the link's token bucket can have let through between the two readings of the counters.
    const windowSeconds = (performance.now() - floodStart) / 1000;
    // Each honest build that completed cost the middle relay one handshake (on the first relay's link); the rest were the attacker's.
    const honestBuilds = attacked.ok;
    const handshakes = after.handshakes - before.handshakes - honestBuilds;
    return {
      idleP50Ms: p50(idle.ms),
      idleP90Ms: p90(idle.ms),
      idleBuilds: idle.ok,
      idleFailed: idle.failed,
      attackP50Ms: p50(attacked.ms),
      attackP90Ms: p90(attacked.ms),
      attackBuilds: attacked.ok,
      attackFailed: attacked.failed,
      ratioP50: p50(attacked.ms) / p50(idle.ms),
      ratioP90: p90(attacked.ms) / p90(idle.ms),
      create2Sent: sent,
      floodSeconds,
      attackerHandshakes: handshakes,
      refusedLinkRate: after.createsRefused["link-rate"] - before.createsRefused["link-rate"],
      refusedAddressRate: after.createsRefused["address-rate"] - before.createsRefused["address-rate"],
      refusedCircuits: after.createsRefused.circuits - before.createsRefused.circuits,
      destroysReceived: destroys,
      createdReceived: created,
      allowedByLimit: DEFAULT_LIMITS.createBurstPerLink + DEFAULT_LIMITS.createsPerSecondPerLink * windowSeconds,
      limits: { createsPerSecondPerLink: DEFAULT_LIMITS.createsPerSecondPerLink, createBurstPerLink: DEFAULT_LIMITS.createBurstPerLink },
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- 2. RPC while anonymous links hold half-sent requests

const ECHO = 100;

async function rpcUnderSlotAttack(credentials: TlsCredentials) {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const target = await startNode({ listen: { host: "127.30.0.1", port: 0 } }, { tlsCredentials: credentials });
    cleanups.push(() => target.close());
    target.rpc.serve(ECHO, async (req) => req);
    const at = peerOf(target);
    const honestManager = await createConnectionManager({ identity: generateEd25519KeyPair(), tlsCredentials: credentials });
    cleanups.push(() => honestManager.close());
    const honest = createLinkRpc({ manager: honestManager });
    const payload = new Uint8Array(64).fill(7);
    const echo = async () => (await honest.request(at, ECHO, payload, { timeoutMs: 5000 })).length === payload.length;
    await measure(echo, 20);
    const idle = await measure(echo, 300, 3000);

    // 300 anonymous links x 4 half-sent requests = 1,200 slots asked for: more than the old node-wide 1,024.
    const ATTACK_LINKS = 300;
    const perLink = 4;
    const links: Link[] = [];
    const managers: ConnectionManager[] = [];
    cleanups.push(async () => void (await Promise.all(managers.map((m) => m.close()))));
    for (let i = 0; i < ATTACK_LINKS; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, ATTACK_LINKS - i) }, async () => {
          const m = await createConnectionManager({ tlsCredentials: credentials });
          managers.push(m);
          return m.getLink(at);
        }),
      );
      links.push(...batch);
    }
    let nextId = 1;
    let halfSent = 0;
    let attacking = true;
    let peakAnonymous = 0;
    const refusalsBefore = { ...target.rpc.stats.refusals.anonymous };
    const attack = (async () => {
      // Every link keeps asking for 4 fresh slots every 500 ms, announcing 4,000 bytes and sending one cell (494).
      while (attacking) {
        for (const link of links) {
          if (!link.isOpen) continue;
          for (let k = 0; k < perLink; k++, halfSent++) link.send(encodeRpcCells(RpcCellKind.REQUEST, ECHO, nextId++, new Uint8Array(4000))[0]!);
        }
        await sleep(500);
        peakAnonymous = Math.max(peakAnonymous, target.rpc.stats.serving.anonymous);
      }
    })();
    await sleep(1000);
    const sampler = setInterval(() => (peakAnonymous = Math.max(peakAnonymous, target.rpc.stats.serving.anonymous)), 50);
    const attacked = await measure(echo, 300, 5000);
    clearInterval(sampler);
    attacking = false;
    await attack;
    const refusalsAfter = target.rpc.stats.refusals.anonymous;
    const refused = Object.fromEntries(Object.entries(refusalsAfter).map(([k, v]) => [k, v - (refusalsBefore[k as keyof typeof refusalsBefore] ?? 0)]));
    const openLinks = links.filter((l) => l.isOpen).length;
    return {
      idleP50Ms: p50(idle.ms),
      idleSuccess: idle.ok / (idle.ok + idle.failed),
      idleRequests: idle.ok + idle.failed,
      attackP50Ms: p50(attacked.ms),
      attackP90Ms: p90(attacked.ms),
      idleP90Ms: p90(idle.ms),
      attackSuccess: attacked.ok / (attacked.ok + attacked.failed),
      attackRequests: attacked.ok + attacked.failed,
      ratioP50: p50(attacked.ms) / p50(idle.ms),
      attackLinks: ATTACK_LINKS,
      attackLinksOpenAtEnd: openLinks,
      halfSentRequests: halfSent,
      peakAnonymousServing: peakAnonymous,
      anonymousServingBudget: DEFAULT_ANONYMOUS_RPC_LIMITS.maxServing,
      anonymousRefusals: refused,
      nodeRefusals: { ...target.rpc.stats.refusals.node },
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- 3. DHT under a replay-cache flood

const DHT = { staticDifficulty: 0, dynamicDifficulty: 4, bucketSize: 8, disjointPaths: 2, alpha: 2, rpcTimeoutMs: 5000 };

async function dhtUnderReplayFlood(credentials: TlsCredentials) {
  const nodes: RunningNode[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const start = async (i: number, seed: RunningNode | undefined) => {
      const n = await startNode(
        {
          listen: { host: `127.${40 + i}.0.1`, port: 0 },
          dht: { ...DHT, ...(seed ? { seeds: [{ identity: seed.info.identity, host: seed.info.host, port: seed.info.port }] } : {}) },
        },
        { tlsCredentials: credentials },
      );
      cleanups.push(() => n.close());
      return n;
    };
    nodes.push(await start(0, undefined));
    for (let i = 1; i < 5; i++) nodes.push(await start(i, nodes[0]));
    for (let i = 0; i < 300 && !nodes.every((n) => n.dht.node.table.size === nodes.length - 1); i++) await sleep(50);
    const target = nodes[0] as RunningNode;
    const honest = nodes.slice(1, 4);
    let turn = 0;
    // Signed pings to the target and node lookups (which ask the target too), from three honest nodes in turn.
    const op = async () => {
      const n = honest[turn % honest.length] as RunningNode;
      const kind = turn++ % 2;
      if (kind === 0) return n.dht.node.ping(target.dht.node.contact);
      const found = await n.dht.node.lookupNode(new Uint8Array(randomBytes(32)));
      return found !== undefined;
    };
    await measure(op, 20);
    const idle = await measure(op, 200, 2000);

    // The attacker: a fifth node's authenticated link, PINGs in its own name with all-zero signatures, fresh nonces, 12 in flight.
    const attacker = nodes[4] as RunningNode;
    const sender = attacker.dht.node.contact;
    const refusedBefore = { ...target.dht.node.stats.refused };
    let forged = 0;
    let answered = 0;
    let attacking = true;
    const worker = async () => {
      while (attacking) {
        const nonce = new Uint8Array(randomBytes(16));
        const ping: DhtRequest = { version: DHT_PROTOCOL_VERSION, sender, nonce, timestamp: Date.now(), body: { type: "PING" }, signature: new Uint8Array(64) };
        forged++;
        await attacker.rpc.request(peerOf(target), DHT_RPC_SERVICE, encodeDhtMessage(ping), { timeoutMs: 5000 }).then(
          () => void answered++,
          () => undefined,
        );
      }
    };
    const workers = Array.from({ length: 12 }, worker);
    await sleep(300);
    const attacked = await measure(op, 200, 5000);
    attacking = false;
    await Promise.all(workers);
    const refusedAfter = target.dht.node.stats.refused;
    const delta = (k: string) =>
      ((refusedAfter as Record<string, number | undefined>)[k] ?? 0) - ((refusedBefore as Record<string, number | undefined>)[k] ?? 0);
    return {
      nodes: nodes.length,
      idleSuccess: idle.ok / (idle.ok + idle.failed),
      idleOps: idle.ok + idle.failed,
      idleP50Ms: p50(idle.ms),
      attackSuccess: attacked.ok / (attacked.ok + attacked.failed),
      attackOps: attacked.ok + attacked.failed,
      attackP50Ms: p50(attacked.ms),
      ratioP50: p50(attacked.ms) / p50(idle.ms),
      forgedPingsSent: forged,
      forgedPingsAnswered: answered,
      refusedBadSignature: delta("bad-message-signature"),
      refusedBusy: delta("busy"),
      refusedOverloaded: delta("overloaded"),
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- 4. links one source can hold

async function linksPerSource(credentials: TlsCredentials) {
  const managers: ConnectionManager[] = [];
  try {
    // Listening on "::": 127.0.0.1 arrives as ::ffff:127.0.0.1 (one source), ::1 is another.
    const key = generateEd25519KeyPair();
    const target = await createConnectionManager({
      identity: key,
      listen: { host: "::", port: 0 },
      tlsCredentials: credentials,
      inbound: { exemptLoopback: false },
    });
    managers.push(target);
    const port = target.address()!.port;
    const limits = target.inboundLimits;
    const tryLink = async (host: string) => {
      const m = await createConnectionManager({ tlsCredentials: credentials });
      managers.push(m);
      return m.getLink({ identity: key.publicKey, host, port }).then(
        (l) => l.isOpen,
        () => false,
      );
    };
    let linked = 0;
    let attempts = 0;
    while (attempts < limits.maxPerAddress * 4) {
      attempts++;
      if (await tryLink("127.0.0.1")) linked++;
      else break;
    }
    // A few more tries from the same source after the first refusal.
    let laterLinked = 0;
    for (let i = 0; i < 5; i++) if (await tryLink("127.0.0.1")) laterLinked++;
    const otherSource = await tryLink("::1");
    return {
      maxPerAddress: limits.maxPerAddress,
      maxPerPrefix: limits.maxPerPrefix,
      linkedFromOneSource: linked,
      attemptsBeforeRefusal: attempts,
      linkedAfterRefusal: laterLinked,
      refusedPerAddress: target.stats.refusals["per-address"],
      otherSourceLinked: otherSource,
      anonymousInbound: target.anonymousInboundLinks,
    };
  } finally {
    await Promise.all(managers.reverse().map((m) => m.close().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------- 5. consensus while one source holds half-sent requests at every discovery node

/** A free TCP port on `host` (discovery nodes must know each other's ports before they start). */
const freePort = (host: string) =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

async function consensusUnderSlotAttack(credentials: TlsCredentials) {
  const nodes: RunningNode[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const schedule = { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 };
    const hostOf = (i: number) => `127.${50 + i}.0.1`;
    const secrets = [0, 1, 2].map(() => new Uint8Array(randomBytes(32)));
    const hexOf = (b: Uint8Array) => Buffer.from(b).toString("hex");
    const ports = await Promise.all(secrets.map((_, i) => freePort(hostOf(i))));
    const discovery = secrets.map((sk, i) => ({ identity: hexOf(ed25519PublicKey(sk)), host: hostOf(i), port: ports[i] as number }));
    const registry = Object.fromEntries(discovery.map((d) => [d.identity, ["onion", "discovery"]]));
    for (const [i, sk] of secrets.entries()) {
      const node = await startNode(
        {
          listen: { host: hostOf(i), port: ports[i] },
          identity: { secretKeyHex: hexOf(sk) },
          roles: ["onion", "discovery"],
          dht: { ...DHT, ...(i === 0 ? {} : { seeds: [discovery[0] as (typeof discovery)[number]] }) },
          directory: { discovery, schedule, publishIntervalMs: 1000, retryMs: 500, registry },
        },
        { tlsCredentials: credentials },
      );
      nodes.push(node);
      cleanups.push(() => node.close());
    }
    const services = nodes.map((n) => {
      const service = n.directory?.service;
      if (!service) throw new Error("a discovery node without its discovery service");
      return service;
    });
    // Valid-afters each node published (the service verifies its own consensus against the set: ≥ K signatures), and the fewest signers seen.
    const published = services.map(() => new Set<number>());
    let fewestSigners = Infinity;
    services.forEach((s, i) =>
      s.on("consensus-published", (c) => {
        published[i]?.add(c.validAfter);
        fewestSigners = Math.min(fewestSigners, c.signers.length);
      }),
    );
    const threshold = nodes[0]?.directory?.chainStatus().threshold ?? Number.NaN;
    for (let i = 0; i < 300 && !published.every((p) => p.size > 0); i++) await sleep(100);
    if (!published.every((p) => p.size > 0)) throw new Error("no consensus from every discovery node within 30 s");

    // A window counts the periods whose consensus is due inside it (published at valid-after), read after a grace.
    const PERIODS = 7;
    const window = async () => {
      const from = Math.ceil((Date.now() + 1) / schedule.periodMs) * schedule.periodMs;
      const periods = Array.from({ length: PERIODS }, (_, k) => from + k * schedule.periodMs);
      await sleep((periods.at(-1) as number) + 700 - Date.now());
      const byAll = periods.filter((v) => published.every((p) => p.has(v))).length;
      const byAny = periods.filter((v) => published.some((p) => p.has(v))).length;
      const perNode = published.map((p) => periods.filter((v) => p.has(v)).length);
      return { periods: periods.length, byAll, byAny, perNode };
    };
    const idle = await window();

    // One source (this process, one manager per attacker "slot"), 300 anonymous links to each discovery node, 4 half-sent requests on each.
    const LINKS_PER_NODE = 300;
    const perLink = 4;
    const targets = nodes.map(peerOf);
    const links: Link[] = [];
    const managers: ConnectionManager[] = [];
    cleanups.push(async () => void (await Promise.all(managers.map((m) => m.close()))));
    let linkFailures = 0;
    for (let i = 0; i < LINKS_PER_NODE; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, LINKS_PER_NODE - i) }, async () => {
          const m = await createConnectionManager({ tlsCredentials: credentials });
          managers.push(m);
          for (const at of targets)
            await m.getLink(at).then(
              (l) => void links.push(l),
              () => void linkFailures++,
            );
        }),
      );
    }
    let nextId = 1;
    let halfSent = 0;
    let attacking = true;
    let peakAnonymous = 0;
    const refusalsBefore = nodes.map((n) => ({ ...n.rpc.stats.refusals.anonymous }));
    const nodeRefusalsBefore = nodes.map((n) => Object.values(n.rpc.stats.refusals.node).reduce((a, b) => a + b, 0));
    const failuresBefore = services.map((s) => ({ ...s.stats.consensusFailures }));
    // The requests go to the directory service, which anonymous clients may use (they fetch the consensus there).
    const DIRECTORY = serviceId(DIRECTORY_SERVICE);
    const attack = (async () => {
      while (attacking) {
        for (const link of links) {
          if (!link.isOpen) continue;
          for (let k = 0; k < perLink; k++, halfSent++) link.send(encodeRpcCells(RpcCellKind.REQUEST, DIRECTORY, nextId++, new Uint8Array(4000))[0]!);
        }
        await sleep(500);
      }
    })();
    const sampler = setInterval(() => (peakAnonymous = Math.max(peakAnonymous, ...nodes.map((n) => n.rpc.stats.serving.anonymous))), 50);
    await sleep(1000);
    const attacked = await window();
    clearInterval(sampler);
    attacking = false;
    await attack;
    const refused: Record<string, number> = {};
    nodes.forEach((n, i) => {
      for (const [k, v] of Object.entries(n.rpc.stats.refusals.anonymous))
        refused[k] = (refused[k] ?? 0) + v - ((refusalsBefore[i] as Record<string, number>)[k] ?? 0);
    });
    const nodeRefusals = nodes.reduce(
      (sum, n, i) => sum + Object.values(n.rpc.stats.refusals.node).reduce((a, b) => a + b, 0) - (nodeRefusalsBefore[i] as number),
      0,
    );
    const consensusFailures: Record<string, number> = {};
    services.forEach((s, i) => {
      for (const [k, v] of Object.entries(s.stats.consensusFailures))
        consensusFailures[k] = (consensusFailures[k] ?? 0) + v - ((failuresBefore[i] as Record<string, number>)[k] ?? 0);
    });
    return {
      discoveryNodes: nodes.length,
      threshold,
      periodMs: schedule.periodMs,
      idle,
      attacked,
      ratio: attacked.byAll / idle.byAll,
      fewestSigners,
      linksPerNode: LINKS_PER_NODE,
      linksOpened: links.length,
      linksOpenAtEnd: links.filter((l) => l.isOpen).length,
      linkFailures,
      halfSentRequests: halfSent,
      peakAnonymousServing: peakAnonymous,
      anonymousServingBudget: DEFAULT_ANONYMOUS_RPC_LIMITS.maxServing,
      anonymousRefusals: refused,
      nodeRefusals,
      consensusFailuresDuringAttack: consensusFailures,
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- the section

export async function run(): Promise<BenchSection> {
  const credentials = await generateTlsCredentials();
  const onion = await circuitsUnderCreateFlood(credentials);
  const rpc = await rpcUnderSlotAttack(credentials);
  const dht = await dhtUnderReplayFlood(credentials);
  const sources = await linksPerSource(credentials);
  const consensus = await consensusUnderSlotAttack(credentials);

  const met = (ok: boolean) => (ok ? "met" : "not met");
  const pct = (x: number) => `${fmt(x * 100, 1)} %`;
  const targets = {
    circuitP50: onion.ratioP50 <= 2,
    rpcSuccess: rpc.attackSuccess >= 0.99,
    dhtSuccess: dht.attackSuccess >= 0.99,
    linksPerSource: sources.linkedFromOneSource + sources.linkedAfterRefusal <= sources.maxPerAddress && sources.otherSourceLinked,
    consensusEveryPeriod: consensus.attacked.byAll === consensus.attacked.periods && consensus.ratio >= 1,
  };
  const nonZero = (counts: Record<string, number>) =>
    Object.entries(counts)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(", ") || "none";
  const markdown = [
    "Honest work measured idle, then while an attack runs, in the same run; nodes in this process with real TLS links on loopback (127.x.0.1), default limits unless said. " +
      "The attacker runs in the same process, so its own CPU is part of the cost the honest side sees.",
    "",
    table(
      ["figure", "idle (baseline, same run)", "under attack", "ratio", "target"],
      [
        [
          `3-hop circuit build, middle relay flooded with CREATE2 over another link (${fmt(onion.create2Sent)} cells in ${fmt(onion.floodSeconds, 1)} s; ${onion.idleBuilds} / ${onion.attackBuilds} builds)`,
          `p50 ${fmt(onion.idleP50Ms, 1)} ms, p90 ${fmt(onion.idleP90Ms, 1)} ms${onion.idleFailed ? `, ${onion.idleFailed} failed` : ""}`,
          `p50 ${fmt(onion.attackP50Ms, 1)} ms, p90 ${fmt(onion.attackP90Ms, 1)} ms${onion.attackFailed ? `, ${onion.attackFailed} failed` : ""}`,
          `p50 ${fmt(onion.ratioP50, 2)} ×, p90 ${fmt(onion.ratioP90, 2)} ×`,
          `p50 ≤ 2 × idle: ${met(targets.circuitP50)}`,
        ],
        [
          `ntor handshakes the flooded relay computed for the attacker's link (limit ${onion.limits.createsPerSecondPerLink}/s, burst ${onion.limits.createBurstPerLink})`,
          `${fmt(onion.create2Sent)} CREATE2 sent`,
          `${fmt(onion.attackerHandshakes)} computed; refused before ntor: ${fmt(onion.refusedLinkRate)} at the link rate, ${fmt(onion.refusedCircuits)} at the circuit cap`,
          `${fmt(onion.attackerHandshakes / onion.create2Sent, 3)} of cells sent`,
          `≤ burst + rate × time = ${fmt(onion.allowedByLimit)}: ${met(onion.attackerHandshakes <= onion.allowedByLimit)}`,
        ],
        [
          `64-byte RPC ECHO over a node link, ${rpc.attackLinks} anonymous links each holding ${4} half-sent requests (${fmt(rpc.halfSentRequests)} sent; old node-wide budget 1,024)`,
          `${pct(rpc.idleSuccess)} of ${rpc.idleRequests}, p50 ${fmt(rpc.idleP50Ms, 2)} ms, p90 ${fmt(rpc.idleP90Ms, 2)} ms`,
          `${pct(rpc.attackSuccess)} of ${rpc.attackRequests}, p50 ${fmt(rpc.attackP50Ms, 2)} ms, p90 ${fmt(rpc.attackP90Ms, 2)} ms`,
          `p50 ${fmt(rpc.ratioP50, 2)} ×`,
          `≥ 99 % success: ${met(targets.rpcSuccess)}`,
        ],
        [
          `signed DHT pings and node lookups among ${dht.nodes} DHT nodes, one flooding the target with zero-signature pings (${fmt(dht.forgedPingsSent)} sent)`,
          `${pct(dht.idleSuccess)} of ${dht.idleOps}, p50 ${fmt(dht.idleP50Ms, 2)} ms`,
          `${pct(dht.attackSuccess)} of ${dht.attackOps}, p50 ${fmt(dht.attackP50Ms, 2)} ms`,
          `p50 ${fmt(dht.ratioP50, 2)} ×`,
          `≥ 99 % success: ${met(targets.dhtSuccess)}`,
        ],
        [
          "anonymous links one source address holds (loopback exemption off), opened until refused",
          `per-source cap ${sources.maxPerAddress}`,
          `${sources.linkedFromOneSource} linked, then ${sources.linkedAfterRefusal} of 5 more; another source (::1) ${sources.otherSourceLinked ? "linked" : "refused"}`,
          `${fmt(sources.linkedFromOneSource / sources.maxPerAddress, 2)} × cap`,
          `≤ its share, another source links: ${met(targets.linksPerSource)}`,
        ],
        [
          `consensus published every period (${consensus.periodMs / 1000} s periods, ${consensus.discoveryNodes} discovery nodes, K = ${consensus.threshold}), one source opening ${consensus.linksPerNode} anonymous links to every discovery node at once, each holding 4 half-sent directory requests (${fmt(consensus.linksOpened)} links, ${fmt(consensus.halfSentRequests)} requests sent)`,
          `${consensus.idle.byAll} of ${consensus.idle.periods} periods published by every node (per node ${consensus.idle.perNode.join(" / ")})`,
          `${consensus.attacked.byAll} of ${consensus.attacked.periods} periods published by every node (per node ${consensus.attacked.perNode.join(" / ")})`,
          `${fmt(consensus.ratio, 2)} × idle`,
          `a consensus every period: ${met(targets.consensusEveryPeriod)}`,
        ],
      ],
    ),
    "",
    "Method: the honest client builds 10 circuits a second through three relays, each closed after it is built; the attacker's CREATE2 cells carry valid ntor onionskins " +
      "and it destroys every circuit the relay accepts, so only the per-link CREATE rate stands in its way (the handshakes row subtracts the honest builds). " +
      "RPC and DHT operations run one at a time, back to back; every attack starts before its measurement and runs until it ends. " +
      "Latency under the DHT flood includes the target answering the flood on the same CPU (no latency target there, only success).",
    "",
    `During the slot attack the anonymous class held at most ${rpc.peakAnonymousServing} requests (its budget ${rpc.anonymousServingBudget}); ` +
      `anonymous refusals: ${Object.entries(rpc.anonymousRefusals)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(", ")}; node-class refusals: ${Object.values(rpc.nodeRefusals).reduce((a, b) => a + b, 0)}. ` +
      `The replay flood was refused bad-message-signature ${fmt(dht.refusedBadSignature)} times, busy ${dht.refusedBusy}, overloaded ${dht.refusedOverloaded}. ` +
      `During the attack on the discovery nodes (row 5) their anonymous class held at most ${consensus.peakAnonymousServing} requests at one node (budget ${consensus.anonymousServingBudget}); ` +
      `anonymous refusals at the three nodes: ${nonZero(consensus.anonymousRefusals)}; node-class refusals: ${consensus.nodeRefusals}; ` +
      `rounds without a consensus: ${nonZero(consensus.consensusFailuresDuringAttack)}; fewest signatures on a published consensus: ${consensus.fewestSigners}. ` +
      "A period counts when every discovery node published (and so serves) a consensus with at least K valid signatures for it; votes, signatures and descriptors travel on node links. " +
      "An anonymous client fetching the consensus from a discovery node during such an attack competes for that full anonymous class (not measured here); caches fetch on node links. " +
      `The second source in row 4 is ::1 (the node listens on "::", 127.0.0.1 arrives as ::ffff:127.0.0.1): on one machine a dial cannot pick another 127.x source address.`,
  ].join("\n");
  const figures = {
    circuitBuildUnderCreateFlood: onion,
    rpcUnderSlotAttack: rpc,
    dhtUnderReplayFlood: dht,
    linksPerSource: sources,
    consensusUnderSlotAttack: consensus,
    targetsMet: targets,
  };
  return { title: "Under attack", markdown, figures };
}
