/**
 * Long fuzz run over the link handshake state machine: random bytes in random
 * chunks on both roles, and mutations of a valid responder flight. Every step
 * must either progress or fail with a typed LinkError carrying a CLOSE cell
 * with its reason; a mutated flight must never authenticate anyone but the
 * expected peer. The unit tests run the same properties briefly.
 *
 *   npx tsx scripts/fuzz-link.ts --iterations 100000 [--seed 42]
 */
import { Command } from "commander";
import fc from "fast-check";
import { generateEd25519KeyPair } from "../node/src/crypto/ed25519.js";
import { LinkError } from "../node/src/link/errors.js";
import { LinkHandshake, type HandshakeStep } from "../node/src/link/handshake.js";
import { CELL_LEN, CellCommand, decodeCell } from "../node/src/wire/cell.js";

const program = new Command()
  .option("--iterations <n>", "cases per target", (v) => Number.parseInt(v, 10), 50_000)
  .option("--seed <n>", "fast-check seed (random when omitted)", (v) => Number.parseInt(v, 10))
  .parse();
const { iterations, seed } = program.opts<{ iterations: number; seed?: number }>();

const alice = generateEd25519KeyPair();
const bob = generateEd25519KeyPair();
const ekm = new Uint8Array(32).fill(0x42);
const initiator = () => new LinkHandshake({ role: "initiator", identity: alice, expectedPeer: bob.publicKey, ekm, startedAt: 0, timeoutMs: 1000 });
const responder = () => new LinkHandshake({ role: "responder", identity: bob, ekm, startedAt: 0, timeoutMs: 1000 });

function check(step: HandshakeStep, wasPending: boolean): void {
  for (const out of step.output) if (out.length % CELL_LEN !== 0) throw new Error(`output of ${out.length} bytes is not whole cells`);
  if (step.status !== "failed" || !wasPending) return;
  if (!(step.error instanceof LinkError)) throw new Error(`untyped handshake failure: ${String(step.error)}`);
  if (!step.closedByPeer && step.error.closeReason !== undefined) {
    const last = step.output.at(-1);
    const cell = last ? decodeCell(last) : undefined;
    if (cell?.command !== CellCommand.CLOSE || cell.payload[0] !== step.error.closeReason) {
      throw new Error(`failure ${step.error.kind} did not send CLOSE with reason ${step.error.closeReason}`);
    }
  }
}

function feed(hs: LinkHandshake, chunks: Uint8Array[]): HandshakeStep[] {
  const steps: HandshakeStep[] = [];
  for (const chunk of chunks) {
    const wasPending = hs.state === "pending";
    const step = hs.receive(chunk, 1);
    check(step, wasPending);
    steps.push(step);
  }
  return steps;
}

const params = { numRuns: iterations, ...(seed === undefined ? {} : { seed }) };
const started = performance.now();

fc.assert(
  fc.property(fc.boolean(), fc.array(fc.uint8Array({ maxLength: 1600 }), { minLength: 1, maxLength: 6 }), (asInitiator, chunks) => {
    const hs = asInitiator ? initiator() : responder();
    check(hs.start(), true);
    feed(hs, chunks);
  }),
  params,
);
console.log(`random chunks: ${iterations} cases ok`);

const r0 = responder();
const i0 = initiator();
const valid = Buffer.concat([...r0.start().output, ...r0.receive(Buffer.concat(i0.start().output), 1).output]);
fc.assert(
  fc.property(
    fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
    fc.integer({ min: 1, max: valid.length }),
    (mutations, cut) => {
      const bytes = Uint8Array.from(valid);
      for (const [at, value] of mutations) bytes[at] = value;
      const hs = initiator();
      check(hs.start(), true);
      const steps = feed(hs, [bytes.subarray(0, cut), bytes.subarray(cut)]);
      const done = steps.find((s) => s.status === "done");
      if (done && !Buffer.from(done.result?.peerIdentity ?? []).equals(Buffer.from(bob.publicKey))) {
        throw new Error("a mutated flight authenticated an identity other than the expected peer");
      }
    },
  ),
  params,
);
console.log(`mutated flights: ${iterations} cases ok (${((performance.now() - started) / 1000).toFixed(1)} s)`);
