/**
 * Fuzz properties of the link handshake state machine: random bytes in random
 * chunks on both roles, and mutations of a valid responder flight. Every step
 * either progresses or fails with a typed LinkError carrying a CLOSE cell with
 * its reason; a mutated flight never authenticates anyone but the expected
 * peer. Run briefly by test/unit/link/handshake.test.ts and at length by
 * scripts/fuzz-link.ts.
 */
import fc from "fast-check";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { LinkError } from "../../node/src/link/errors.js";
import { LinkHandshake, type HandshakeStep } from "../../node/src/link/handshake.js";
import { CELL_LEN, CellCommand, decodeCell } from "../../node/src/wire/cell.js";
import { check, target, type FuzzTarget } from "./common.js";

const alice = generateEd25519KeyPair();
const bob = generateEd25519KeyPair();
const ekm = new Uint8Array(32).fill(0x42);
const initiator = () => new LinkHandshake({ role: "initiator", identity: alice, expectedPeer: bob.publicKey, ekm, startedAt: 0, timeoutMs: 1000 });
const responder = () => new LinkHandshake({ role: "responder", identity: bob, ekm, startedAt: 0, timeoutMs: 1000 });

/** A step is well formed: whole cells out; the step that fails is typed and carries a CLOSE cell with its reason unless the peer closed. */
export function checkStep(step: HandshakeStep, wasPending = true): void {
  for (const out of step.output) check(out.length % CELL_LEN === 0, `output of ${out.length} bytes is not whole cells`);
  if (step.status !== "failed" || !wasPending) return;
  check(step.error instanceof LinkError, `untyped handshake failure: ${String(step.error)}`);
  const error = step.error as LinkError;
  check(typeof error.kind === "string", "a handshake failure without a kind");
  if (!step.closedByPeer && error.closeReason !== undefined) {
    const last = step.output.at(-1);
    const cell = last ? decodeCell(last) : undefined;
    check(cell?.command === CellCommand.CLOSE && cell.payload[0] === error.closeReason, `failure ${error.kind} did not send CLOSE with reason ${error.closeReason}`);
  }
}

function feed(hs: LinkHandshake, chunks: Uint8Array[]): HandshakeStep[] {
  return chunks.map((chunk) => {
    const wasPending = hs.state === "pending";
    const step = hs.receive(chunk, 1);
    checkStep(step, wasPending);
    return step;
  });
}

export const linkTargets: FuzzTarget[] = [
  target("handshake: random bytes in random chunks on both roles", () =>
    fc.property(fc.boolean(), fc.array(fc.uint8Array({ maxLength: 1600 }), { minLength: 1, maxLength: 6 }), (asInitiator, chunks) => {
      const hs = asInitiator ? initiator() : responder();
      checkStep(hs.start());
      feed(hs, chunks);
      check(["pending", "failed", "done"].includes(hs.state), `unknown state ${hs.state}`);
    }),
  ),
  target("handshake: a mutated responder flight never authenticates a forged identity", () => {
    const r0 = responder();
    const i0 = initiator();
    const valid = Buffer.concat([...r0.start().output, ...r0.receive(Buffer.concat(i0.start().output), 1).output]);
    return fc.property(
      fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: valid.length }),
      (mutations, cut) => {
        const bytes = Uint8Array.from(valid);
        for (const [at, value] of mutations) bytes[at] = value;
        const hs = initiator();
        checkStep(hs.start());
        const done = feed(hs, [bytes.subarray(0, cut), bytes.subarray(cut)]).find((s) => s.status === "done");
        // Only mutations outside the signed bytes (padding) may pass, and the identity is still Bob's.
        if (done) check(Buffer.from(done.result?.peerIdentity ?? []).equals(Buffer.from(bob.publicKey)), "a mutated flight authenticated an identity other than the expected peer");
      },
    );
  }),
];
