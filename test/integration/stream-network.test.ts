/**
 * Stream creation the way the whitepaper (§8.2) has it, on full nodes
 * (startNode, real TLS on 127.<i>.0.1): a producer reaches the landing node
 * only through a 3-hop circuit (service "stream"), with an oracle-signed
 * receipt; the landing node answers with a stream id and publish token; the
 * producer then opens a direct stream link on the landing node's link port
 * (ALPN psp-stream/1 next to psp-link/1) and a viewer plays through the two
 * distribution nodes the producer named.
 *
 * Proves: the node wiring (stream links and onion links on one port, the
 * "stream" service at the end of circuits), a replayed or forged receipt
 * refused through the circuit with its typed kind, and chunks reaching a
 * viewer sealed end to end; the landing node's stream service saw only a
 * circuit (no link to the producer, who dialed the first hop).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { hexOf } from "../../node/src/base/hex.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/tls.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { OnionClientHandle } from "../../node/src/onion/onion-client.js";
import { oracleAdmission } from "../../node/src/stream/admission.js";
import { requestStreamCreation } from "../../node/src/stream/creation.js";
import { generateStreamKey } from "../../node/src/stream/crypto.js";
import type { NodeEntry } from "../../node/src/stream/frames.js";
import { StreamMediaError } from "../../node/src/stream/media-errors.js";
import { playStream } from "../../node/src/stream/player.js";
import { openPublisher } from "../../node/src/stream/publisher.js";
import { signReceipt } from "../../node/src/stream/receipt.js";
import type { ReceiptChainView } from "../../node/src/stream/receipt.js";
import { signSessionId } from "../../node/src/stream/session.js";
import { createPspStreams } from "../../node/src/stream/client-streams.js";
import { decodeTicket } from "../../node/src/stream/ticket.js";
import { Readable } from "node:stream";
import { createCircuitDhtClient } from "../../node/src/dht/proxy.js";
import { publicStreamRecordKey, readPublicStreamRecord } from "../../node/src/stream/public-record.js";

const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`stream-network/${label}`));
const oracle = generateEd25519KeyPair();
const view: ReceiptChainView = {
  oracleKeys: () => Promise.resolve([oracle.publicKey]),
  verifyInclusion: () => Promise.resolve(false),
  isRevoked: () => Promise.resolve(false),
  blindKey: () => Promise.resolve(undefined),
  isOracleSigner: () => Promise.resolve(false),
};
const nodes: RunningNode[] = [];
const DHT = { staticDifficulty: 0, dynamicDifficulty: 4, bucketSize: 8, disjointPaths: 2, alpha: 2, rpcTimeoutMs: 5000 };
const leftAt = new Map<string, number>();
let credentials: TlsCredentials;
let client: OnionClientHandle;
const nowS = (): number => Math.floor(Date.now() / 1000);
const entry = (n: RunningNode): NodeEntry => ({ identity: n.pathNode.identity, host: n.info.host, port: n.info.port, load: 0 });

beforeAll(async () => {
  credentials = await generateTlsCredentials();
  for (let i = 0; i < 3; i++) {
    const node = await startNode(
      {
        listen: { host: `127.${i + 1}.0.1`, port: 0 },
        identity: { secretKeyHex: hexOf(secret(`node-${i}`)) },
        api: false,
        dht: { ...DHT, ...(nodes[0] ? { seeds: [{ identity: nodes[0].info.identity, host: nodes[0].info.host, port: nodes[0].info.port }] } : {}) },
      },
      {
        tlsCredentials: credentials,
        streamAdmission: oracleAdmission({ view, sessionOracleKeys: () => [oracle.publicKey] }),
        // What the "stream" service at each node sees arrive: counted per circuit, nothing else is given to it.
        wrapService: (name, service) =>
          name !== "stream"
            ? service
            : (stream, now) => {
                leftAt.set(`${i}:${stream.circuitId}`, (leftAt.get(`${i}:${stream.circuitId}`) ?? 0) + 1);
                return service(stream, now);
              },
      },
    );
    nodes.push(node);
  }
  const deadline = Date.now() + 15_000;
  while (!nodes.every((n) => n.dht.node.table.size === 2)) {
    if (Date.now() > deadline) throw new Error("the nodes' DHT routing tables did not fill");
    await new Promise((r) => setTimeout(r, 50));
  }
  client = await createOnionClient({ nodes: nodes.map((n) => n.pathNode) });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await Promise.all(nodes.map((n) => n.close()));
});

describe("stream creation through a circuit on full nodes", () => {
  it("creates through a 3-hop circuit, refuses a replayed or forged receipt there, then publishes and plays over stream links", async () => {
    const [n0, n1, landing] = nodes as [RunningNode, RunningNode, RunningNode];
    const circuit = await client.buildCircuit({ path: [n0.pathNode, n1.pathNode, landing.pathNode] });
    const receipt = signReceipt({
      params: { bitrateKbps: 2000, maxDurationSeconds: 300, formatFlags: 5 },
      issuedAt: nowS() - 5,
      expiresAt: nowS() + 600,
      secretKey: oracle.secretKey,
    });
    const request = { receipt: receipt.bytes, kbps: 1500, durationS: 120, public: false, distribution: [entry(n0), entry(n1)] };
    const created = await requestStreamCreation(await circuit.openStream("stream"), request);
    expect(created.streamId).toHaveLength(16);

    const replay = await requestStreamCreation(await circuit.openStream("stream"), request).catch((e: unknown) => e);
    expect(replay).toBeInstanceOf(StreamMediaError);
    expect((replay as StreamMediaError).kind).toBe("replayed");
    const stranger = generateEd25519KeyPair();
    const forged = signReceipt({
      params: { bitrateKbps: 2000, maxDurationSeconds: 300, formatFlags: 5 },
      issuedAt: nowS() - 5,
      expiresAt: nowS() + 600,
      secretKey: stranger.secretKey,
    });
    const refused = await requestStreamCreation(await circuit.openStream("stream"), { ...request, receipt: forged.bytes }).catch((e: unknown) => e);
    expect((refused as StreamMediaError).kind).toBe("bad-receipt");
    circuit.close();
    // Only the landing node's service saw the requests, and only as a circuit.
    expect([...leftAt.keys()].every((k) => k.startsWith("2:"))).toBe(true);

    const held = landing.streams!.streamsView();
    expect(held).toHaveLength(1);
    expect(held[0]!.feeds.map((f) => hexOf(f.identity)).sort()).toEqual([n0.info.identity, n1.info.identity].sort());
    await expect.poll(() => [n0, n1].every((d) => d.streams!.streamsView().length === 1), { timeout: 10_000 }).toBe(true);

    const ticket = {
      streamId: created.streamId,
      streamKey: generateStreamKey(),
      landing: landing.pathNode.identity,
      host: landing.info.host,
      port: landing.info.port,
    };
    const session = signSessionId({ issuedAt: nowS() - 5, expiresAt: nowS() + 600, secretKey: oracle.secretKey }).bytes;
    const player = await playStream({ ticket, session: () => session });
    const got: string[] = [];
    player.on("media", (c) => got.push(new TextDecoder().decode(c.media)));
    const publisher = await openPublisher({ ticket, token: created.token });
    for (let i = 0; i < 20; i++) publisher.write(new TextEncoder().encode(`chunk ${i}`));
    await expect.poll(() => got.length, { timeout: 10_000 }).toBe(20);
    expect(got[19]).toBe("chunk 19");
    expect([n0.info.identity, n1.info.identity]).toContain(player.stats.attachedTo[0]);
    publisher.end();
    await new Promise<void>((resolve) => player.once("end", resolve));
    // The onion links still work next to the stream links on the same ports.
    expect(landing.manager.links().length).toBeGreaterThan(0);
  }, 60_000);

  it("the client's streams API: create (landing and distribution picked from the nodes), publish a readable, play from the ticket", async () => {
    const streams = createPspStreams({ circuitTo: (node) => client.buildCircuit({ lastHop: node }), nodes: () => nodes.map((n) => n.pathNode) });
    const receipt = signReceipt({
      params: { bitrateKbps: 2000, maxDurationSeconds: 300, formatFlags: 5 },
      issuedAt: nowS() - 5,
      expiresAt: nowS() + 600,
      secretKey: oracle.secretKey,
    });
    const created = await streams.create({ receipt: receipt.bytes, kbps: 1000, durationS: 60, distribution: 2 });
    const ticket = decodeTicket(created.ticket);
    const landing = nodes.find((n) => n.info.identity === hexOf(ticket.landing))!;
    expect(landing.streams!.streamsView().some((s) => hexOf(s.streamId) === hexOf(ticket.streamId))).toBe(true);
    // The token is not in the ticket: a viewer cannot publish.
    expect(created.ticket).not.toContain(Buffer.from(created.token).toString("base64url"));
    const session = signSessionId({ issuedAt: nowS() - 5, expiresAt: nowS() + 600, secretKey: oracle.secretKey }).bytes;
    await expect
      .poll(() => landing.streams!.streamsView().find((s) => hexOf(s.streamId) === hexOf(ticket.streamId))?.feeds.length, { timeout: 10_000 })
      .toBe(2);
    const player = await streams.play({ ticket: created.ticket, session: () => session });
    const got: Buffer[] = [];
    player.on("media", (c) => got.push(Buffer.from(c.media)));
    const ended = new Promise<void>((resolve) => player.once("end", resolve));
    const input = Buffer.alloc(188 * 200, 0x47);
    await streams.publish({ ticket: created.ticket, token: created.token, input: Readable.from([input.subarray(0, 188 * 50), input.subarray(188 * 50)]) });
    await ended;
    expect(Buffer.concat(got).equals(input)).toBe(true);
  }, 60_000);

  it("a public stream: the landing node publishes a DHT record it signs, with the receipt's format flags and the access points", async () => {
    const [n0, n1, landing] = nodes as [RunningNode, RunningNode, RunningNode];
    const circuit = await client.buildCircuit({ path: [n0.pathNode, n1.pathNode, landing.pathNode] });
    const receipt = signReceipt({
      params: { bitrateKbps: 2000, maxDurationSeconds: 300, formatFlags: 5 },
      issuedAt: nowS() - 5,
      expiresAt: nowS() + 600,
      secretKey: oracle.secretKey,
    });
    const created = await requestStreamCreation(await circuit.openStream("stream"), {
      receipt: receipt.bytes,
      kbps: 1200,
      durationS: 120,
      public: true,
      distribution: [entry(n0), entry(n1)],
    });
    const lookup = createCircuitDhtClient(await circuit.openStream("dht"));
    const key = publicStreamRecordKey(landing.pathNode.identity, created.streamId);
    let points = 0;
    await expect
      .poll(
        async () => {
          const record = await lookup.get(key);
          if (!record) return 0;
          const info = readPublicStreamRecord(record, landing.pathNode.identity, created.streamId);
          expect(info.formatFlags).toBe(5);
          expect(info.kbps).toBe(1200);
          points = info.points.length;
          return info.points.filter((p) => [n0.info.identity, n1.info.identity].includes(hexOf(p.identity))).length;
        },
        { timeout: 15_000, interval: 300 },
      )
      .toBe(2);
    expect(points).toBe(2);
    lookup.close();
    circuit.close();
  }, 60_000);
});
