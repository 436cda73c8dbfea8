/**
 * The oracle service (oracle/service.ts) in process, on a memory PKI and real
 * SQLite stores: a subscribed identity with a threshold certificate gets a
 * linkable receipt (and its row, receipt id → identity, is stored and queued
 * for the other oracle) or a blind signature that finalizes into a receipt
 * verifiable under the published key; every refusal is typed
 * (not-subscribed, bad-certificate, bad-proof, challenge-reused,
 * not-an-oracle, unknown-key, pow-invalid); session ids for solved puzzles;
 * replicated rows are accepted only from current oracles over node links; the
 * store keeps its rows across a reopen; the batcher builds the OZ tree the
 * contract verifies. Clock values are fixed numbers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bytesToHex, encodeAbiParameters, keccak256, type Hex } from "viem";
import { assembleCertificate, buildCertificateBody, signCertificateBody, verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import { generateBlindRsaKey } from "../../node/src/crypto/blind-rsa.js";
import { ed25519Sign, generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { solveDynamicPuzzle } from "../../node/src/crypto/puzzles.js";
import {
  decodeOracleResponse,
  encodeOracleMessage,
  receiptProofMessage,
  type OracleRequest,
  type OracleResponse,
} from "../../node/src/stream/oracle-messages.js";
import { OracleError } from "../../node/src/stream/oracle-errors.js";
import { blindKeyId, finishBlindReceipt, prepareBlindReceipt, verifyBlindReceipt, verifyReceipt } from "../../node/src/stream/receipt.js";
import { verifySessionId } from "../../node/src/stream/session.js";
import { createBatcher, receiptTree } from "../../oracle/batcher.js";
import { createReplicator, issuanceMessage } from "../../oracle/replication.js";
import { createOracleService, type ActiveBlindKey } from "../../oracle/service.js";
import { OracleStore } from "../../oracle/store.js";
import { CHAIN_ID, REGISTRY, makeAuthorities, makeIdentity, memoryPki } from "./authority/helpers.js";
import { silentLogger } from "../../node/src/log.js";

const T0 = 1_800_000_000;
const dir = mkdtempSync(join(tmpdir(), "psp-oracle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const authorities = makeAuthorities(3);
const alice = makeIdentity();
const bob = makeIdentity();
const oracleA = generateEd25519KeyPair();
const oracleB = generateEd25519KeyPair();
const hexKey = (k: Uint8Array) => bytesToHex(k);
const pki = memoryPki(authorities, [alice, bob]);
pki.state.sets.oracle = [oracleA, oracleB].map((o, i) => ({
  nodeKey: hexKey(o.publicKey),
  publicKey: o.publicKey,
  signer: `0x00000000000000000000000000000000000000c${i}` as const,
}));
pki.state.subscriptions.set(alice.identityId.toLowerCase(), T0 + 86400);

function certFor(id: typeof alice): Uint8Array {
  const { bodyBytes } = buildCertificateBody({ identity: id.identity, chainId: CHAIN_ID, registry: REGISTRY, notBefore: T0, notAfter: T0 + 3600 });
  return assembleCertificate(
    bodyBytes,
    authorities.map((a) => signCertificateBody(bodyBytes, a.node.secretKey)),
  );
}

const rsa = generateBlindRsaKey(2048);
const blindKey: ActiveBlindKey = {
  keyId: blindKeyId(rsa.publicKey.spki),
  spki: rsa.publicKey.spki,
  params: { bitrateKbps: 3000, maxDurationSeconds: 600, formatFlags: 7 },
  validFrom: T0 - 60,
  validUntil: T0 + 86400,
  privateKey: rsa,
};

function makeOracle(node: typeof oracleA, store: OracleStore, burst = 1000, clock = { t: (T0 + 5) * 1000 }) {
  return createOracleService({
    nodeSecretKey: node.secretKey,
    pki,
    verifyCertificate: (cert, now) =>
      verifyAccessCertificate(cert, { now, authorities: authorities.map((a) => a.node.publicKey), threshold: 2, chainId: CHAIN_ID, registry: REGISTRY }),
    store,
    blindKeys: () => [blindKey],
    now: () => clock.t,
    limits: { puzzleDifficulty: 8, burst },
    logger: silentLogger(),
  });
}

async function ask(service: ReturnType<typeof makeOracle>, req: OracleRequest, ctx = { client: "circuit:1" }): Promise<OracleResponse> {
  return decodeOracleResponse(await service.handleMessage(encodeOracleMessage(req), ctx));
}

async function requestReceipt(
  service: ReturnType<typeof makeOracle>,
  who: typeof alice,
  opts: { cert?: Uint8Array; blind?: { blinded: Uint8Array; key: Hex }; badProof?: boolean } = {},
) {
  const ch = await ask(service, { t: "challenge-request" });
  if (ch.t !== "challenge") throw new Error(`no challenge: ${JSON.stringify(ch)}`);
  const proof = ed25519Sign(opts.badProof ? bob.keys.secretKey : who.keys.secretKey, receiptProofMessage(ch.oracle, ch.nonce, opts.blind));
  const req: OracleRequest = { t: "receipt-request", cert: opts.cert ?? certFor(who), nonce: ch.nonce, proof, ...(opts.blind ?? {}) };
  return { response: await ask(service, req), req };
}

describe("oracle service", () => {
  const storeA = new OracleStore(join(dir, "a.sqlite"));
  const storeB = new OracleStore(join(dir, "b.sqlite"));
  const a = makeOracle(oracleA, storeA);
  const b = makeOracle(oracleB, storeB);

  it("issues a linkable receipt to a subscribed identity and stores receipt id → identity, queued for the other oracle", async () => {
    const { response } = await requestReceipt(a, alice);
    expect(response.t).toBe("receipt");
    if (response.t !== "receipt") return;
    const receipt = verifyReceipt(response.receipt, { oracleKeys: [oracleA.publicKey], now: T0 + 5 });
    const row = storeA.get(Buffer.from(receipt.id).toString("hex"))!;
    expect(row.identity).toBe(alice.identity);
    expect(row.receiptHash).toBe(receipt.receiptHash);
    expect(storeA.pendingPeers()).toEqual([hexKey(oracleB.publicKey).slice(2)]);
    // The receipt itself names no identity.
    expect(Buffer.from(response.receipt).includes(Buffer.from(alice.identity))).toBe(false);
    expect(Buffer.from(response.receipt).includes(Buffer.from(alice.keys.publicKey))).toBe(false);
  });

  it("refuses with typed reasons: unsubscribed, forged proof, bad certificate, reused challenge", async () => {
    const refusal = (r: OracleResponse) => (r.t === "error" ? r.kind : r.t);
    expect(refusal((await requestReceipt(a, bob)).response)).toBe("not-subscribed");
    expect(refusal((await requestReceipt(a, alice, { badProof: true })).response)).toBe("bad-proof");
    const cert = certFor(alice);
    cert[cert.length - 3]! ^= 1;
    expect(refusal((await requestReceipt(a, alice, { cert })).response)).toBe("bad-certificate");
    const { req } = await requestReceipt(a, alice);
    expect(refusal(await ask(a, req))).toBe("challenge-reused");
    expect(refusal(await ask(a, { t: "proof-request", hash: `0x${"00".repeat(32)}` }))).toBe("unknown-receipt");
    const bad = await a.handleMessage(new Uint8Array([1, 2, 3]));
    expect(refusal(decodeOracleResponse(bad))).toBe("malformed-request");
  });

  it("a node outside the oracle set refuses not-an-oracle", async () => {
    const outsider = makeOracle(generateEd25519KeyPair(), new OracleStore(":memory:"));
    const { response } = await requestReceipt(outsider, alice);
    expect(response.t === "error" && response.kind).toBe("not-an-oracle");
  });

  it("blind mode: the oracle signs a blinded token it cannot see; the finalized receipt verifies under the published key", async () => {
    const keys = await ask(a, { t: "keys-request" });
    expect(keys.t === "keys" && keys.keys.map((k) => k.keyId)).toEqual([blindKey.keyId]);
    const request = prepareBlindReceipt(blindKey.spki);
    const { response } = await requestReceipt(a, alice, { blind: { blinded: request.blindedMsg, key: blindKey.keyId } });
    expect(response.t).toBe("blind-sig");
    if (response.t !== "blind-sig") return;
    const receipt = finishBlindReceipt(request, response.sig);
    const verified = verifyBlindReceipt(receipt.bytes, {
      key: { ...blindKey, oracle: "0x00000000000000000000000000000000000000c0", revoked: false },
      oracleCurrent: true,
      now: T0 + 10,
    });
    expect(verified.params).toEqual(blindKey.params);
    // What the oracle stored: the identity and the key, never the token.
    const rows = storeA.all().filter((r) => r.kind === "blind");
    expect(rows).toHaveLength(1);
    expect(rows[0]!.identity).toBe(alice.identity);
    expect(rows[0]!.keyId).toBe(blindKey.keyId);
    expect(Buffer.from(rows[0]!.doc).includes(Buffer.from(request.token))).toBe(false);
    const unknown = await requestReceipt(a, alice, { blind: { blinded: request.blindedMsg, key: `0x${"ab".repeat(32)}` } });
    expect(unknown.response.t === "error" && unknown.response.kind).toBe("unknown-key");
  });

  it("issues a session id for a solved puzzle, naming the viewer key asked for; refuses a wrong or reused solution", async () => {
    const viewerKey = generateEd25519KeyPair().publicKey;
    const p = await ask(a, { t: "puzzle-request" });
    if (p.t !== "puzzle") throw new Error("no puzzle");
    const wrong = await ask(a, { t: "session-request", seed: p.seed, x: new Uint8Array(32).fill(0xff), viewerKey });
    // One attempt per puzzle: a wrong x spends it (unless it happens to solve it).
    if (wrong.t === "error") expect(["pow-invalid"]).toContain(wrong.kind);
    const p2 = await ask(a, { t: "puzzle-request" });
    if (p2.t !== "puzzle") throw new Error("no puzzle");
    const { x } = solveDynamicPuzzle(p2.seed, { difficulty: p2.difficulty });
    const s = await ask(a, { t: "session-request", seed: p2.seed, x, viewerKey });
    expect(s.t).toBe("session");
    if (s.t !== "session") return;
    const verified = verifySessionId(s.session, { oracleKeys: [oracleA.publicKey], now: T0 + 6 });
    expect(verified.oracle).toEqual(oracleA.publicKey);
    expect(verified.viewerKey).toEqual(viewerKey);
    const again = await ask(a, { t: "session-request", seed: p2.seed, x, viewerKey });
    expect(again.t === "error" && again.kind).toBe("challenge-reused");
  });

  it("replication: B accepts A's signed rows from A's node link, refuses them from a stranger or anonymously", async () => {
    const rows = storeA.issuanceOutbox().due(hexKey(oracleB.publicKey).slice(2), Number.MAX_SAFE_INTEGER, 16);
    expect(rows.length).toBeGreaterThan(0);
    const msg: OracleRequest = { t: "replicate", rows: rows.map((r) => r.doc) };
    const stranger = await b.handleMessage(encodeOracleMessage(msg), { client: "x", peer: generateEd25519KeyPair().publicKey } as never);
    expect(decodeOracleResponse(stranger)).toMatchObject({ t: "error", kind: "bad-replica" });
    const anonymous = await b.handleMessage(encodeOracleMessage(msg), { client: "x" });
    expect(decodeOracleResponse(anonymous)).toMatchObject({ t: "error", kind: "bad-replica" });
    const ok = decodeOracleResponse(await b.handleMessage(encodeOracleMessage(msg), { client: "node", peer: oracleA.publicKey } as never));
    expect(ok).toEqual({ t: "ack", n: rows.length });
    for (const r of rows) expect(storeB.get(r.id)?.identity).toBe(storeA.get(r.id)?.identity);
    // A row that does not open is dropped and counted, never a reason to refuse (and so re-send) the rest.
    const badBefore = b.status().refusals["bad-replica"] ?? 0;
    const mixed = decodeOracleResponse(
      await b.handleMessage(encodeOracleMessage({ t: "replicate", rows: [new Uint8Array([0xa0]), rows[0]!.doc] }), {
        client: "node",
        peer: oracleA.publicKey,
      } as never),
    );
    expect(mixed).toEqual({ t: "ack", n: 2 });
    expect(b.status().refusals["bad-replica"]).toBe(badBefore + 1);
    expect(storeB.pendingPeers()).toEqual([]);
  });

  it("the batcher commits a tree the contract's leaf rule verifies, stores proofs; the store survives a reopen", async () => {
    const committed: { root: Hex; count: number }[] = [];
    const batcher = createBatcher({
      store: storeA,
      oracle: hexKey(oracleA.publicKey).slice(2),
      commit: async (root, count) => (committed.push({ root, count }), 7n),
      logger: silentLogger(),
    });
    expect(await batcher.flush()).toBe(7n);
    batcher.close();
    expect(committed).toHaveLength(1);
    const linkable = storeA.all().filter((r) => r.kind === "linkable");
    expect(committed[0]!.count).toBe(linkable.length);
    const inclusion = storeA.inclusion(linkable[0]!.receiptHash!)!;
    expect(inclusion.batchId).toBe(7n);
    // OracleReceipts.receiptLeaf: keccak256(keccak256(abi.encode(hash))), sorted pairs.
    const leaf = keccak256(keccak256(encodeAbiParameters([{ type: "bytes32" }], [linkable[0]!.receiptHash!])));
    expect(receiptTree(linkable.map((r) => r.receiptHash!)).leafHash([linkable[0]!.receiptHash!])).toBe(leaf);
    const served = await ask(a, { t: "proof-request", hash: linkable[0]!.receiptHash! });
    expect(served).toEqual({ t: "inclusion", batchId: 7n, proof: inclusion.proof });
    const before = storeA.all();
    storeA.close();
    const reopened = new OracleStore(join(dir, "a.sqlite"));
    expect(reopened.all()).toEqual(before);
    expect(reopened.inclusion(linkable[0]!.receiptHash!)).toEqual(inclusion);
    reopened.close();
  });

  it("the replicator retries a failed delivery with backoff and clears the outbox once the peer acks", async () => {
    const source = new OracleStore(":memory:");
    const target = new OracleStore(":memory:");
    const issuer = makeOracle(oracleA, source);
    const receiver = makeOracle(oracleB, target);
    await requestReceipt(issuer, alice);
    const peer = hexKey(oracleB.publicKey).slice(2);
    const clock = { t: (T0 + 5) * 1000 }; // the service queued the row at its own clock
    let down = true;
    const replicator = createReplicator({
      queue: source.issuanceOutbox(),
      message: issuanceMessage,
      what: "issuance rows",
      now: () => clock.t,
      intervalMs: 3_600_000,
      logger: silentLogger(),
      send: async (to, request) => {
        expect(to).toBe(peer);
        if (down) throw new Error("link refused");
        return await receiver.handleMessage(request, { client: "node", peer: oracleA.publicKey });
      },
    });
    await replicator.tick();
    expect(replicator.stats()).toEqual({ sent: 0, failed: 1 });
    expect(source.issuanceOutbox().due(peer, clock.t, 16)).toHaveLength(0); // backed off
    expect(source.issuanceOutbox().due(peer, clock.t + 2_000, 16)).toHaveLength(1);
    down = false;
    clock.t += 2_000;
    await replicator.tick();
    replicator.close();
    expect(replicator.stats()).toEqual({ sent: 1, failed: 1 });
    expect(source.outboxSize()).toBe(0);
    expect(target.all().map((r) => r.identity)).toEqual([alice.identity]);
  });

  it("rate-limits one circuit: past its burst a request is refused rate-limited with a retry time", async () => {
    const limited = makeOracle(oracleA, new OracleStore(":memory:"), 2);
    const kinds: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await ask(limited, { t: "puzzle-request" });
      kinds.push(r.t === "error" ? r.kind : r.t);
    }
    expect(kinds).toEqual(["puzzle", "puzzle", "rate-limited", "rate-limited"]);
    expect((await ask(limited, { t: "puzzle-request" }, { client: "circuit:2" })).t).toBe("puzzle");
  });

  it("errors carry OracleError kinds with categories", () => {
    expect(OracleError.categoryOf("not-subscribed")).toBe("refused");
    expect(OracleError.categoryOf("rate-limited")).toBe("transient");
  });
});
