import { describe, expect, it } from "vitest";
import { ed25519Sign, generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { encodeAuthPayload, encodeVersionsBody } from "../../../node/src/link/cells.js";
import { CloseReason, LinkError } from "../../../node/src/link/errors.js";
import { LinkHandshake, authTranscript } from "../../../node/src/link/handshake.js";
import type { HandshakeOptions, HandshakeStep } from "../../../node/src/link/handshake.js";
import { CELL_LEN, CellCommand, decodeCell, encodeCell } from "../../../node/src/wire/cell.js";
import { linkTargets } from "../../properties/link.js";
import { fuzzTests } from "../../properties/vitest.js";

const alice = generateEd25519KeyPair();
const bob = generateEd25519KeyPair();
const ekm = new Uint8Array(32).fill(0x42);

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

function pair(init: Partial<HandshakeOptions> = {}, resp: Partial<HandshakeOptions> = {}): { initiator: LinkHandshake; responder: LinkHandshake } {
  return {
    initiator: new LinkHandshake({ role: "initiator", identity: alice, expectedPeer: bob.publicKey, ekm, startedAt: 0, timeoutMs: 1000, ...init }),
    responder: new LinkHandshake({ role: "responder", identity: bob, ekm, startedAt: 0, timeoutMs: 1000, ...resp }),
  };
}

/** Runs both machines against each other, delivering each flight whole. */
function run(initiator: LinkHandshake, responder: LinkHandshake, extraFromInitiator?: Uint8Array): { i: HandshakeStep; r: HandshakeStep } {
  let toResponder = concat(initiator.start().output);
  let toInitiator = concat(responder.start().output);
  let i: HandshakeStep = { output: [], status: "pending" };
  let r: HandshakeStep = { output: [], status: "pending" };
  for (let round = 0; round < 5 && (i.status === "pending" || r.status === "pending"); round++) {
    if (toInitiator.length && i.status === "pending") {
      i = initiator.receive(toInitiator, 1);
      toResponder = concat([toResponder, ...i.output]);
      if (i.status === "done" && extraFromInitiator) toResponder = concat([toResponder, extraFromInitiator]);
    }
    toInitiator = new Uint8Array(0);
    if (toResponder.length && r.status === "pending") {
      r = responder.receive(toResponder, 1);
      toInitiator = concat(r.output);
    }
    toResponder = new Uint8Array(0);
  }
  return { i, r };
}

function closeReasonOf(step: HandshakeStep): number | undefined {
  const last = step.output.at(-1);
  if (!last) return undefined;
  const cell = decodeCell(last);
  return cell.command === CellCommand.CLOSE ? cell.payload[0] : undefined;
}

describe("link handshake", () => {
  it("authenticates both nodes", () => {
    const { initiator, responder } = pair();
    const { i, r } = run(initiator, responder);
    expect(i.status).toBe("done");
    expect(r.status).toBe("done");
    expect(Buffer.from(i.result?.peerIdentity ?? []).equals(Buffer.from(bob.publicKey))).toBe(true);
    expect(Buffer.from(r.result?.peerIdentity ?? []).equals(Buffer.from(alice.publicKey))).toBe(true);
    expect(i.result?.version).toBe(1);
  });

  it("hands the cells that follow AUTH in the same read to the open link", () => {
    const { initiator, responder } = pair();
    const initiatorVersions = concat(initiator.start().output);
    const responderVersions = concat(responder.start().output);
    const responderAuth = concat(responder.receive(initiatorVersions, 1).output);
    const initiatorStep = initiator.receive(concat([responderVersions, responderAuth]), 1);
    expect(initiatorStep.status).toBe("done");
    const initiatorAuth = concat(initiatorStep.output);
    const relay = encodeCell({ circId: 9, command: CellCommand.RELAY, payload: Uint8Array.of(1, 2, 3) });
    const r = responder.receive(concat([initiatorAuth, relay, relay.subarray(0, 100)]), 1);
    expect(r.status).toBe("done");
    expect(r.remainder?.length).toBe(CELL_LEN + 100);
    expect(decodeCell(r.remainder as Uint8Array).circId).toBe(9);
  });

  it("negotiates the highest common version", () => {
    const { initiator, responder } = pair({ versions: [1, 2, 5] }, { versions: [2, 1, 3] });
    const { i, r } = run(initiator, responder);
    expect(i.result?.version).toBe(2);
    expect(r.result?.version).toBe(2);
  });

  it("closes with NO_COMMON_VERSION when the lists do not meet", () => {
    const { initiator, responder } = pair({ versions: [1] }, { versions: [2] });
    const { i, r } = run(initiator, responder);
    expect(i.error?.kind).toBe("no-common-version");
    expect(r.error?.kind).toBe("no-common-version");
    expect(closeReasonOf(i) ?? closeReasonOf(r)).toBe(CloseReason.NO_COMMON_VERSION);
  });

  it("refuses a responder that proves another identity than the one dialed", () => {
    const { initiator, responder } = pair({ expectedPeer: generateEd25519KeyPair().publicKey });
    const { i, r } = run(initiator, responder);
    expect(i.error?.kind).toBe("identity-mismatch");
    expect(closeReasonOf(i)).toBe(CloseReason.IDENTITY_MISMATCH);
    // The initiator never sent its AUTH: the responder learns why from the CLOSE cell.
    expect(i.output.some((c) => decodeCell(c).command === CellCommand.AUTH)).toBe(false);
    const step = r;
    expect(step.error?.closeReason).toBe(CloseReason.IDENTITY_MISMATCH);
  });

  it("rejects a signature made for another TLS session (different EKM)", () => {
    const { initiator } = pair();
    const responder = new LinkHandshake({ role: "responder", identity: bob, ekm: new Uint8Array(32).fill(1), startedAt: 0, timeoutMs: 1000 });
    const { i } = run(initiator, responder);
    expect(i.error?.kind).toBe("auth-failed");
    expect(closeReasonOf(i)).toBe(CloseReason.AUTH_FAILED);
  });

  it("rejects an AUTH replayed with the other role (the transcript names the signer's role)", () => {
    // An attacker reflects the initiator's own valid signature back as the responder's.
    const initiator = new LinkHandshake({ role: "initiator", identity: alice, expectedPeer: alice.publicKey, ekm, startedAt: 0, timeoutMs: 1000 });
    initiator.start();
    const theirVersions = encodeVersionsBody([1]);
    const signature = ed25519Sign(
      alice.secretKey,
      authTranscript({ signerRole: "initiator", version: 1, initiatorVersions: theirVersions, responderVersions: theirVersions, ekm, signerIdentity: alice.publicKey }),
    );
    const flight = concat([
      encodeCell({ circId: 0, command: CellCommand.VERSIONS, payload: theirVersions }),
      encodeCell({ circId: 0, command: CellCommand.AUTH, payload: encodeAuthPayload({ method: 1, identity: alice.publicKey, signature }) }),
    ]);
    expect(initiator.receive(flight, 1).error?.kind).toBe("auth-failed");
  });

  it("lets a client dial anonymously and marks it on the responder", () => {
    const { initiator, responder } = pair({ identity: undefined });
    const { i, r } = run(initiator, responder);
    expect(i.status).toBe("done");
    expect(r.status).toBe("done");
    expect(r.result?.peerIdentity).toBeUndefined();
  });

  it("refuses anonymous clients when told to, and anonymous responders always", () => {
    const refused = pair({ identity: undefined }, { acceptAnonymous: false });
    const { r } = run(refused.initiator, refused.responder);
    expect(r.error?.kind).toBe("anonymous-refused");
    expect(closeReasonOf(r)).toBe(CloseReason.ANONYMOUS_REFUSED);

    const initiator = new LinkHandshake({ role: "initiator", identity: alice, expectedPeer: bob.publicKey, ekm, startedAt: 0, timeoutMs: 1000 });
    initiator.start();
    const flight = concat([
      encodeCell({ circId: 0, command: CellCommand.VERSIONS, payload: encodeVersionsBody([1]) }),
      encodeCell({ circId: 0, command: CellCommand.AUTH, payload: encodeAuthPayload({ method: 0 }) }),
    ]);
    expect(initiator.receive(flight, 1).error?.kind).toBe("anonymous-refused");
  });

  it("times out with HANDSHAKE_TIMEOUT", () => {
    const { initiator } = pair();
    initiator.start();
    expect(initiator.tick(999).status).toBe("pending");
    const step = initiator.tick(1000);
    expect(step.error?.kind).toBe("handshake-timeout");
    expect(closeReasonOf(step)).toBe(CloseReason.HANDSHAKE_TIMEOUT);
    expect(initiator.receive(new Uint8Array(CELL_LEN), 2000).status).toBe("failed");
  });

  it("rejects cells out of order: circuit cells, AUTH before VERSIONS, a second VERSIONS", () => {
    const cases: [Uint8Array, string][] = [
      [encodeCell({ circId: 3, command: CellCommand.RELAY, payload: new Uint8Array(0) }), "protocol"],
      [encodeCell({ circId: 0, command: CellCommand.AUTH, payload: Uint8Array.of(0) }), "protocol"],
      [
        concat([
          encodeCell({ circId: 0, command: CellCommand.VERSIONS, payload: encodeVersionsBody([1]) }),
          encodeCell({ circId: 0, command: CellCommand.VERSIONS, payload: encodeVersionsBody([1]) }),
        ]),
        "protocol",
      ],
      [Uint8Array.from({ length: CELL_LEN }, (_, k) => (k === 4 ? 200 : 0)), "unknown-command"],
    ];
    for (const [bytes, kind] of cases) {
      const { responder } = pair();
      responder.start();
      const step = responder.receive(bytes, 1);
      expect(step.error?.kind).toBe(kind);
      expect(closeReasonOf(step)).toBeDefined();
    }
  });

  it("rejects bad options with kind config", () => {
    expect(() => new LinkHandshake({ role: "responder", ekm, startedAt: 0, timeoutMs: 1 })).toThrow(LinkError);
    expect(() => new LinkHandshake({ role: "initiator", identity: alice, ekm, startedAt: 0, timeoutMs: 1 })).toThrow(/expects/);
    expect(() => new LinkHandshake({ role: "responder", identity: bob, ekm: new Uint8Array(3), startedAt: 0, timeoutMs: 1 })).toThrow(/32 bytes/);
  });
});

describe("link handshake fuzzing", () => fuzzTests(linkTargets));
