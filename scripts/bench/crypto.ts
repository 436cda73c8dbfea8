/**
 * Crypto benchmarks: each primitive on node:crypto vs @noble, as ratios
 * measured in the same run; AEAD candidates in MB/s; full ntor handshakes;
 * full hs-ntor handshakes against ntor in the same run; key blinding.
 * Run alone with `npx tsx scripts/bench.ts crypto`.
 */
import { aeadBackends } from "../../node/src/crypto/aead.js";
import type { AeadAlgorithm } from "../../node/src/crypto/aead.js";
import { blindPublicKey, blindSecretKey, ed25519SignExpanded } from "../../node/src/crypto/blinding.js";
import { ed25519Backends, generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { hsNtorClientIntroduceKeys, hsNtorClientRendezvous, hsNtorServiceRendezvous, sha3 } from "../../node/src/crypto/hs-ntor.js";
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
  pair("X25519 shared secret (long-term key)", node.x && (() => node.x?.scalarMult(xa.secretKey, xb.publicKey)), () => x25519Backends.noble.scalarMult(xa.secretKey, xb.publicKey));
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

  // Full hs-ntor: client introduce keys + service rendezvous + client rendezvous, against the
  // ntor handshake above (same run, same backend). hs-ntor does 7 X25519 operations to ntor's 6.
  const introAuthKey = new Uint8Array(32).fill(5);
  const subcred = new Uint8Array(32).fill(6);
  const hsHandshake = (): void => {
    const c = hsNtorClientIntroduceKeys({ introAuthKey, introEncKey: onion.publicKey, subcredential: subcred });
    const s = hsNtorServiceRendezvous({ introAuthKey, introEncSecret: onion.secretKey, introEncKey: onion.publicKey, clientPublic: c.clientPublic, subcredential: subcred });
    hsNtorClientRendezvous({ introAuthKey, introEncKey: onion.publicKey, clientSecret: c.clientSecret, clientPublic: c.clientPublic, reply: s.reply });
  };
  const hsOps = opsPerSecond(hsHandshake, 400);
  const ntorAgain = opsPerSecond(handshake, 400);
  const ntorBaseline = (ntorOps + ntorAgain) / 2;
  figures["hs-ntor handshakes"] = {
    backend: x25519.name,
    sha3Backend: sha3.name,
    handshakesPerSec: Math.round(hsOps),
    ntorHandshakesPerSec: Math.round(ntorBaseline),
    ratioToNtor: hsOps / ntorBaseline,
  };

  // Key blinding (rend-spec-v3 A.2, @noble points): a looker-up blinds the identity's public key,
  // the owner derives the blinded key pair once per period and signs records with it.
  const blindMs = 300;
  let period = 1;
  const blindPubOps = opsPerSecond(() => blindPublicKey(kp.publicKey, period++, 1440), blindMs);
  const blindSecOps = opsPerSecond(() => blindSecretKey(kp.secretKey, period++, 1440), blindMs);
  const blinded = blindSecretKey(kp.secretKey, 1, 1440);
  const blindSignOps = opsPerSecond(() => ed25519SignExpanded(blinded.secretKey, msg, blinded.publicKey), blindMs);
  figures["key blinding"] = {
    blindPublicKeyPerSec: Math.round(blindPubOps),
    blindSecretKeyPerSec: Math.round(blindSecOps),
    blindedSignPerSec: Math.round(blindSignOps),
  };

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
    "",
    `hs-ntor (client introduce + service rendezvous + client rendezvous, ${x25519.name} X25519, ${sha3.name} SHA-3): ${fmt(hsOps)} handshakes/s,`,
    `${fmt(hsOps / ntorBaseline, 2)}× the ntor rate measured in this run (${fmt(ntorBaseline)}/s; hs-ntor does 7 X25519 operations to ntor's 6).`,
    "",
    `Key blinding (@noble): blinded public key ${fmt(blindPubOps)}/s, blinded key pair ${fmt(blindSecOps)}/s,`,
    `signature with the blinded key ${fmt(blindSignOps)}/s.`,
  ].join("\n");
  return { title: "Crypto primitives (node:crypto vs @noble)", markdown, figures };
}
