/**
 * Crypto benchmarks: each primitive on node:crypto vs @noble, as ratios
 * measured in the same run; AEAD candidates in MB/s; full ntor handshakes.
 * Run alone with `npx tsx scripts/bench.ts crypto`.
 */
import { aeadBackends } from "../../node/src/crypto/aead.js";
import type { AeadAlgorithm } from "../../node/src/crypto/aead.js";
import { ed25519Backends, generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { hashBackends } from "../../node/src/crypto/kdf.js";
import { ntorClientCreate, ntorClientFinish, ntorServerRespond } from "../../node/src/crypto/ntor.js";
import { generateX25519KeyPair, x25519, x25519Backends } from "../../node/src/crypto/x25519.js";
import { fmt, opsPerSecond, table } from "./types.js";
import type { BenchSection } from "./types.js";

export async function run(): Promise<BenchSection> {
  const figures: Record<string, unknown> = {};
  const rows: (string | number)[][] = [];
  const msg = new Uint8Array(200).fill(7);
  const kp = generateEd25519KeyPair();
  const sig = ed25519Backends.noble.sign(kp.secretKey, msg);
  const xa = generateX25519KeyPair();
  const xb = generateX25519KeyPair();
  const node = { ed: ed25519Backends.node, x: x25519Backends.node, h: hashBackends.node };

  const pair = (name: string, nodeFn: (() => void) | undefined, nobleFn: () => void, ms = 300): void => {
    const nobleOps = opsPerSecond(nobleFn, ms);
    const nodeOps = nodeFn ? opsPerSecond(nodeFn, ms) : NaN;
    figures[name] = { nodeOpsPerSec: Math.round(nodeOps), nobleOpsPerSec: Math.round(nobleOps), ratio: nodeOps / nobleOps };
    rows.push([name, fmt(nodeOps), fmt(nobleOps), `${fmt(nodeOps / nobleOps, 1)}×`]);
  };
  pair("Ed25519 sign", node.ed && (() => node.ed?.sign(kp.secretKey, msg)), () => ed25519Backends.noble.sign(kp.secretKey, msg));
  pair("Ed25519 verify", node.ed && (() => node.ed?.verify(kp.publicKey, msg, sig)), () => ed25519Backends.noble.verify(kp.publicKey, msg, sig));
  pair("X25519 shared secret (long-term key)", node.x && (() => node.x?.scalarMult(xa.secretKey, xb.publicKey)), () =>
    x25519Backends.noble.scalarMult(xa.secretKey, xb.publicKey),
  );
  pair("X25519 ephemeral key pair", node.x && (() => generateX25519KeyPair(node.x)), () => generateX25519KeyPair(x25519Backends.noble));
  const ikm = new Uint8Array(200);
  const salt = new Uint8Array(40);
  const info = new Uint8Array(40);
  pair("HKDF-SHA256, 200 B in, 72 B out", node.h && (() => node.h?.hkdfSha256(ikm, salt, info, 72)), () => hashBackends.noble.hkdfSha256(ikm, salt, info, 72));
  pair("HMAC-SHA256, 200 B", node.h && (() => node.h?.hmacSha256(salt, ikm)), () => hashBackends.noble.hmacSha256(salt, ikm));

  // AEAD candidates: MB/s on 16 KiB and 512 B messages.
  const aeadRows: (string | number)[][] = [];
  const key = new Uint8Array(32).fill(1);
  const nonce = new Uint8Array(12);
  const aad = new Uint8Array(0);
  for (const alg of ["chacha20-poly1305", "aes-256-gcm"] as AeadAlgorithm[]) {
    for (const backendName of ["node", "noble"] as const) {
      const backend = aeadBackends[alg][backendName];
      if (!backend) continue;
      const cells: string[] = [];
      for (const size of [16 * 1024, 512]) {
        const pt = new Uint8Array(size);
        const sealed = backend.seal(key, nonce, pt, aad);
        const seal = (opsPerSecond(() => backend.seal(key, nonce, pt, aad), 250) * size) / 1e6;
        const open = (opsPerSecond(() => backend.open(key, nonce, sealed, aad), 250) * size) / 1e6;
        figures[`AEAD ${alg} ${backendName} ${size} B`] = { sealMBps: seal, openMBps: open };
        cells.push(fmt(seal), fmt(open));
      }
      aeadRows.push([alg, backendName, ...cells]);
    }
  }

  // Full ntor: client create + server respond + client finish, on this runtime's default backend.
  const onion = generateX25519KeyPair();
  const id = new Uint8Array(32).fill(3);
  const handshake = (): void => {
    const { state, onionskin } = ntorClientCreate({ id, onionPublic: onion.publicKey });
    const server = ntorServerRespond({ id, onionSecret: onion.secretKey, onionPublic: onion.publicKey, clientPublic: onionskin.subarray(64), keyLength: 72 });
    ntorClientFinish({ ...state, reply: server.reply, keyLength: 72 });
  };
  const ntorOps = opsPerSecond(handshake, 400);
  const dhOps = opsPerSecond(() => x25519.scalarMult(xa.secretKey, xb.publicKey), 300);
  figures["ntor handshakes"] = { backend: x25519.name, handshakesPerSec: Math.round(ntorOps), x25519OpsPerSec: Math.round(dhOps), ratio: ntorOps / dhOps };

  const markdown = [
    "Each primitive on both backends in the same run; the ratio is node:crypto ÷ @noble.",
    "",
    table(["operation", "node:crypto ops/s", "@noble ops/s", "ratio"], rows),
    "",
    "AEAD candidates, MB/s (seal / open). PSP uses ChaCha20-Poly1305: with node:crypto both",
    "candidates are far above any PSP path, and in browsers (@noble only) ChaCha20-Poly1305 is",
    "several times faster than AES-GCM.",
    "",
    table(["algorithm", "backend", "seal 16 KiB", "open 16 KiB", "seal 512 B", "open 512 B"], aeadRows),
    "",
    `ntor (client create + server respond + client finish, ${x25519.name} backend): ${fmt(ntorOps)} handshakes/s,`,
    `${fmt(ntorOps / dhOps, 3)}× the rate of one X25519 operation (${fmt(dhOps)}/s; a handshake does 6 of them).`,
  ].join("\n");
  return { title: "Crypto primitives (node:crypto vs @noble)", markdown, figures };
}
