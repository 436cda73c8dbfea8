/**
 * Access certificates: how many one authority issues per second (the whole
 * request path: challenge bookkeeping, body decode, proof verification, rate
 * limits, PKI lookups answered from memory as a warm chain cache answers
 * them, endorsement signing) and how many a node verifies per second, each
 * against raw Ed25519 sign / verify measured in the same run.
 * Run alone with `npx tsx scripts/bench.ts certs`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex } from "viem";
import { remoteAttester } from "../../node/src/authority/service.js";
import { connectAuthorities, requestAccessCertificateWhenConfirmed } from "../../node/src/authority/node.js";
import { connectChain } from "../../node/src/chain/clients.js";
import { defaultCertificateThreshold } from "../../node/src/authority/certificate.js";
import { registerIdentity } from "../../node/src/chain/identities.js";
import { createConnectionManager } from "../../node/src/link/manager.js";
import { startDevnet } from "../lib/devnet.js";
import { devAccount } from "../lib/devnet-accounts.js";
import { privateKeyToAccount } from "viem/accounts";
import { applicationId, identityId } from "../../node/src/chain/attestation.js";
import { certificateProofMessage, createAuthorityService, encodeAuthorityMessage, type AuthorityService, type CertificateRequest } from "../../node/src/authority/service.js";
import { assembleCertificate, buildCertificateBody, signCertificateBody, verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import { createMemoryPki } from "../../node/src/chain/pki.js";
import { ed25519Sign, ed25519Verify, generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { fmt, opsPerSecond, table } from "./types.js";
import type { BenchSection } from "./types.js";

const REGISTRY = "0x00000000000000000000000000000000000000aa";
const CHAIN_ID = 31337;

/** Runs `run()` for about `ms` milliseconds, one call after another; returns operations per second. */
async function asyncOpsPerSecond(run: () => Promise<unknown>, ms: number): Promise<number> {
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 8; i++) await run();
    ops += 8;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

/**
 * Measures `target` and its `baseline` alternately for `rounds` rounds and
 * reports the median of each and the median of the per-round ratios: on a
 * loaded machine a ratio of neighbouring measurements is far steadier than
 * one of measurements taken seconds apart.
 */
async function paired(baseline: () => number, target: () => Promise<number>, rounds = 5): Promise<{ base: number; value: number; ratio: number }> {
  const bases: number[] = [];
  const values: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const b = baseline();
    const v = await target();
    bases.push(b);
    values.push(v);
    ratios.push(v / b);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  return { base: median(bases), value: median(values), ratio: median(ratios) };
}

function prepareRequests(service: AuthorityService, n: number, secretKey: Uint8Array, bodyBytes: Uint8Array): CertificateRequest[] {
  return Array.from({ length: n }, () => {
    const challenge = service.issueChallenge();
    return { nonce: challenge.nonce, body: bodyBytes, proof: ed25519Sign(secretKey, certificateProofMessage(challenge, bodyBytes)) };
  });
}

export async function run(): Promise<BenchSection> {
  const authorities = Array.from({ length: 3 }, (_, i) => ({ node: generateEd25519KeyPair(), signer: privateKeyToAccount(`0x${(i + 1).toString(16).padStart(64, "0")}`) }));
  const user = generateEd25519KeyPair();
  const identity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: user.publicKey });
  const id = identityId({ namespace: "peerstream", application: "client", kind: 0, key: user.publicKey });
  const pki = createMemoryPki({ chainId: CHAIN_ID, identityRegistry: REGISTRY });
  pki.state.sets.authority = authorities.map((a) => ({ nodeKey: bytesToHex(a.node.publicKey), publicKey: a.node.publicKey, signer: a.signer.address }));
  pki.state.identities.set(id, {
    status: "active",
    owner: "0x00000000000000000000000000000000000000b0",
    kind: 0,
    registeredAt: 1,
    applicationId: applicationId("peerstream", "client"),
    key: bytesToHex(user.publicKey),
    successor: `0x${"00".repeat(32)}`,
  });
  const limits = { requestsPerMinute: 1e12, burst: 1e12, maxOutstandingChallenges: 1e7 };
  const service = createAuthorityService({ pki, nodeSecretKey: authorities[0]!.node.secretKey, signer: authorities[0]!.signer, limits });
  const now = Math.floor(Date.now() / 1000);
  const { bodyBytes } = buildCertificateBody({ identity, chainId: CHAIN_ID, registry: REGISTRY, notBefore: now, notAfter: now + 3600 });

  // Baselines: raw Ed25519 on a message the size of what an endorsement signs.
  const message = new Uint8Array(bodyBytes.length + 80).fill(7);
  const sig = ed25519Sign(user.secretKey, message);
  const rawSign = () => opsPerSecond(() => ed25519Sign(user.secretKey, message), 200);
  const rawVerify = () => opsPerSecond(() => ed25519Verify(user.publicKey, message, sig), 200);

  // Issuance: requests (challenge + client proof) are prepared outside the timed loops.
  const pool = (count: number) => prepareRequests(service, count, user.secretKey, bodyBytes);
  let client = 0;
  const typed = async () => {
    const requests = pool(1200);
    let i = 0;
    return await asyncOpsPerSecond(() => service.handleCertificateRequest(requests[i++ % requests.length]!, { client: `c${client++ % 64}` }), 200);
  };
  const messages = async () => {
    const encoded = pool(1200).map((r) => encodeAuthorityMessage({ t: "cert-request", ...r }));
    let i = 0;
    return await asyncOpsPerSecond(() => service.handleMessage(encoded[i++ % encoded.length]!, { client: `m${client++ % 64}` }), 200);
  };
  await typed(); // warm-up
  const issue = await paired(rawSign, typed);
  const issueMessages = await paired(rawSign, messages);
  // The crypto floor of one endorsement: verify the client's proof, sign the body.
  const rawVerifySign = () => opsPerSecond(() => ed25519Verify(user.publicKey, message, sig) && ed25519Sign(user.secretKey, message), 200);
  const issueVsFloor = await paired(rawVerifySign, typed);

  // Verification of a 3-signature certificate against the current set (as hex, as the Pki gives it).
  const cert = assembleCertificate(bodyBytes, authorities.map((a) => signCertificateBody(bodyBytes, a.node.secretKey)));
  const keys = authorities.map((a) => bytesToHex(a.node.publicKey));
  const verifyWith = (threshold: number) => async () => opsPerSecond(() => verifyAccessCertificate(cert, { now: Date.now(), authorities: keys, threshold }), 200);
  const verify1 = await paired(rawVerify, verifyWith(1));
  const verify2 = await paired(rawVerify, verifyWith(2));
  const verify3 = await paired(rawVerify, verifyWith(3));

  const e2e = await endToEnd();

  const rows = [
    ["endorsements issued, typed request", fmt(issue.value), fmt(issue.base), `${fmt(issue.ratio, 2)}× sign`],
    ["endorsements issued, typed request (vs raw verify + sign)", fmt(issueVsFloor.value), fmt(issueVsFloor.base), `${fmt(issueVsFloor.ratio, 2)}× verify+sign`],
    ["endorsements issued, CBOR message in/out", fmt(issueMessages.value), fmt(issueMessages.base), `${fmt(issueMessages.ratio, 2)}× sign`],
    ["certificate verify, threshold 1 of 3", fmt(verify1.value), fmt(verify1.base), `${fmt(verify1.ratio, 2)}× verify`],
    ["certificate verify, threshold 2 of 3", fmt(verify2.value), fmt(verify2.base), `${fmt(verify2.ratio, 2)}× verify`],
    ["certificate verify, threshold 3 of 3", fmt(verify3.value), fmt(verify3.base), `${fmt(verify3.ratio, 2)}× verify`],
  ];
  return {
    title: "Access certificates",
    markdown: [
      table(["operation", "per second", "baseline per second (raw Ed25519)", "ratio (median of 5 paired rounds)"], rows),
      "",
      `One authority, one process, ${certBytes(cert)}-byte certificate. Issuing an endorsement costs one Ed25519 verify (the client's proof) and`,
      "one sign, so its ceiling is about sign·verify/(sign+verify); verifying a certificate costs one verify per counted authority plus",
      "decoding and the identity-id hash. PKI answers come from memory, as the chain PKI's warm cache serves them.",
      "",
      table(
        ["end to end on a devnet (3 authority nodes over TLS, Hardhat JSON-RPC)", "ms (median of 3)", "baseline ms: 1 tx round trip + 1 TLS handshake", "ratio"],
        [
          ["fresh key → registered identity → valid certificate", fmt(e2e.endToEndMs, 1), `${fmt(e2e.partsMs, 1)} (${fmt(e2e.txMs, 1)} + ${fmt(e2e.tlsMs, 1)})`, `${fmt(e2e.endToEndMs / e2e.partsMs, 2)}× parts`],
          ["  of which: registration (attestations + tx)", fmt(e2e.registerMs, 1), fmt(e2e.txMs, 1), `${fmt(e2e.registerMs / e2e.txMs, 2)}× tx`],
          ["  of which: certificate (waits for the authorities' event poll, 200 ms)", fmt(e2e.certificateMs, 1), "", ""],
        ],
      ),
      "",
      "The end-to-end path dials three authorities (three TLS handshakes in parallel), asks each for an attestation, sends the registration",
      "transaction and waits for its receipt, then asks each for a challenge and an endorsement once its PKI has seen the registration event",
      "(the devnet's authority nodes poll every 200 ms; retries every 50 ms). The parts are measured on the same chain and nodes.",
    ].join("\n"),
    figures: {
      issue,
      issueMessages,
      issueVsVerifyPlusSign: issueVsFloor,
      verifyThreshold1: verify1,
      verifyThreshold2: verify2,
      verifyThreshold3: verify3,
      certificateBytes: cert.length,
      endToEnd: e2e,
    },
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Register + certify three fresh identities through a devnet's authority nodes, and time the raw parts on the same devnet. */
async function endToEnd(): Promise<{ endToEndMs: number; registerMs: number; certificateMs: number; txMs: number; tlsMs: number; partsMs: number; devnetFirstMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), "psp-bench-certs-"));
  const devnet = await startDevnet({ port: 0, apiPort: 0, dir, deploymentFile: join(dir, "deployment.json"), runNodes: (n) => n.roles.includes("authority") });
  try {
    const deploymentFile = devnet.state.deploymentFile;
    const { readDeployment } = await import("../../node/src/chain/deployment.js");
    const deployment = await readDeployment(deploymentFile);
    const peers = devnet.authorities;
    const authorities = devnet.state.sets.authority;
    const totals: number[] = [];
    const registers: number[] = [];
    const certs: number[] = [];
    const txs: number[] = [];
    const handshakes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const owner = devAccount(15 + i); // Hardhat funds accounts 0..19; the devnet uses 0..14
      const clients = await connectChain({ rpcUrl: devnet.state.rpcUrl, account: owner });
      const keys = generateEd25519KeyPair();
      const identity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey });
      const t0 = performance.now();
      const client = await connectAuthorities(peers);
      try {
        await registerIdentity({ clients, deployment, namespace: "peerstream", application: "client", kind: "account", secretKey: keys.secretKey, attesters: client.transports.map((t) => remoteAttester(t)) });
        const t1 = performance.now();
        await requestAccessCertificateWhenConfirmed({
          transports: client.transports,
          identity,
          identitySecretKey: keys.secretKey,
          chainId: deployment.chainId,
          registry: deployment.contracts.IdentityRegistry.address,
          authorities,
          threshold: defaultCertificateThreshold(authorities.length),
          retryEveryMs: 50,
        });
        const t2 = performance.now();
        totals.push(t2 - t0);
        registers.push(t1 - t0);
        certs.push(t2 - t1);
      } finally {
        await client.close();
      }
      // Parts: one transaction round trip from the same owner, one TLS link handshake to an authority.
      const s0 = performance.now();
      const hash = await clients.walletClient!.sendTransaction({ to: owner.address, value: 0n });
      await clients.publicClient.waitForTransactionReceipt({ hash });
      txs.push(performance.now() - s0);
      const manager = await createConnectionManager({}); // TLS credentials made outside the timing
      const h0 = performance.now();
      await manager.getLink(peers[i % peers.length]!);
      handshakes.push(performance.now() - h0);
      await manager.close();
    }
    const txMs = median(txs);
    const tlsMs = median(handshakes);
    return { endToEndMs: median(totals), registerMs: median(registers), certificateMs: median(certs), txMs, tlsMs, partsMs: txMs + tlsMs, devnetFirstMs: devnet.state.demo.endToEndMs };
  } finally {
    await devnet.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function certBytes(cert: Uint8Array): number {
  return cert.length;
}
