/**
 * The link handshake as a pure state machine: bytes and time in, bytes and a
 * verdict out. No sockets, no timers, no clocks: the caller (link.ts, or a
 * test) feeds received bytes with `receive(bytes, now)`, calls `tick(now)`
 * for the timeout, and writes every `output` buffer to the peer in order.
 *
 * Owns: VERSIONS negotiation, the AUTH transcript and its Ed25519 signature,
 * identity checks (expected identity, anonymous clients, self-links) and the
 * handshake deadline. docs/spec/link.md §4 is the byte-level description.
 *
 * Trusts: the TLS layer for the exported keying material (EKM), which is
 * unique to this TLS session on both ends, so a signature over it cannot be
 * replayed on another connection. Trusts nothing the peer sends.
 */
import { concatBytes } from "../base/bytes.js";
import { constantTimeEqual } from "../crypto/compare.js";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { CellCommand, cellCommandName, decodeCell, encodeCell } from "../wire/cell.js";
import type { Cell } from "../wire/cell.js";
import { WireError } from "../wire/errors.js";
import {
  AUTH_METHOD_ANONYMOUS,
  AUTH_METHOD_ED25519_EKM,
  CellFramer,
  IDENTITY_KEY_LEN,
  SUPPORTED_LINK_VERSIONS,
  encodeAuthPayload,
  encodeCloseCell,
  encodeVersionsBody,
  negotiateVersion,
  parseAuthPayload,
  parseClosePayload,
  parseVersionsPayload,
} from "./cells.js";
import { LinkError, closeReasonForKind, closeReasonName, kindForPeerCloseReason } from "./errors.js";

/** TLS exporter label and length used to bind the link to the TLS session. */
export const EKM_LABEL = "EXPORTER-psp-link-auth";
export const EKM_LEN = 32;
/** Domain separation prefix of the AUTH transcript (16 ASCII bytes). */
export const AUTH_TRANSCRIPT_PREFIX = "PSP-LINK-AUTH-v1";
export const ROLE_INITIATOR = 1;
export const ROLE_RESPONDER = 2;

export type LinkRole = "initiator" | "responder";

export interface HandshakeOptions {
  role: LinkRole;
  /** Our identity key pair; absent only for an anonymous client (initiator). */
  identity?: Ed25519KeyPair;
  /** Initiator: the identity the dialed peer must prove. Required for initiators. */
  expectedPeer?: Uint8Array;
  /** Versions we speak; default SUPPORTED_LINK_VERSIONS. */
  versions?: readonly number[];
  /** Responder: accept initiators that do not authenticate (clients). Default true. */
  acceptAnonymous?: boolean;
  /** The TLS exported keying material of this session (EKM_LEN bytes, same on both ends). */
  ekm: Uint8Array;
  /** Time the handshake started (ms, any monotonic clock) and how long it may take. */
  startedAt: number;
  timeoutMs: number;
}

export interface HandshakeResult {
  role: LinkRole;
  version: number;
  /** The peer's proven Ed25519 identity; undefined for an anonymous client link. */
  peerIdentity: Uint8Array | undefined;
}

export type HandshakeStatus = "pending" | "done" | "failed";

export interface HandshakeStep {
  /** Bytes to write to the peer, in order (whole cells; a CLOSE cell on failure). */
  output: Uint8Array[];
  status: HandshakeStatus;
  result?: HandshakeResult;
  error?: LinkError;
  /** When failed: true if the peer ended it with a CLOSE cell (we send none back). */
  closedByPeer?: boolean;
  /** When done: bytes received after our handshake's last cell (the first link cells). */
  remainder?: Uint8Array;
}

const prefixBytes = new TextEncoder().encode(AUTH_TRANSCRIPT_PREFIX);

/**
 * The bytes an AUTH signature covers (spec §4.3):
 * prefix (16) ‖ signer role (1) ‖ version (2) ‖ initiator VERSIONS body ‖
 * responder VERSIONS body ‖ EKM (32) ‖ signer identity key (32).
 */
export function authTranscript(args: {
  signerRole: LinkRole;
  version: number;
  initiatorVersions: Uint8Array;
  responderVersions: Uint8Array;
  ekm: Uint8Array;
  signerIdentity: Uint8Array;
}): Uint8Array {
  return concatBytes(
    prefixBytes,
    Uint8Array.of(args.signerRole === "initiator" ? ROLE_INITIATOR : ROLE_RESPONDER, args.version >>> 8, args.version & 0xff),
    args.initiatorVersions,
    args.responderVersions,
    args.ekm,
    args.signerIdentity,
  );
}

function fail(kind: ConstructorParameters<typeof LinkError>[0], message: string): LinkError {
  return new LinkError(kind, message, { closeReason: closeReasonForKind(kind) });
}

/** One side of one link handshake. Create it once the TLS session is up (the EKM exists then). */
export class LinkHandshake {
  readonly role: LinkRole;
  readonly deadline: number;
  private readonly identity: Ed25519KeyPair | undefined;
  private readonly expectedPeer: Uint8Array | undefined;
  private readonly versions: readonly number[];
  private readonly ourVersionsBody: Uint8Array;
  private readonly acceptAnonymous: boolean;
  private readonly ekm: Uint8Array;
  private readonly framer = new CellFramer();
  private status: HandshakeStatus = "pending";
  private started = false;
  private peerVersionsBody: Uint8Array | undefined;
  private version: number | undefined;
  private result: HandshakeResult | undefined;
  private error: LinkError | undefined;
  private closedByPeer = false;

  constructor(options: HandshakeOptions) {
    this.role = options.role;
    this.identity = options.identity;
    this.expectedPeer = options.expectedPeer;
    this.versions = options.versions ?? SUPPORTED_LINK_VERSIONS;
    this.ourVersionsBody = encodeVersionsBody(this.versions);
    this.acceptAnonymous = options.acceptAnonymous ?? true;
    this.ekm = options.ekm;
    this.deadline = options.startedAt + options.timeoutMs;
    if (!(this.ekm instanceof Uint8Array) || this.ekm.length !== EKM_LEN) {
      throw new LinkError("config", `the TLS exported keying material must be ${EKM_LEN} bytes`);
    }
    if (this.identity && (this.identity.secretKey?.length !== 32 || this.identity.publicKey?.length !== IDENTITY_KEY_LEN)) {
      throw new LinkError("config", "identity must be an Ed25519 key pair: a 32-byte secretKey seed and a 32-byte publicKey");
    }
    if (this.role === "responder" && !this.identity) {
      throw new LinkError("config", "a responder needs an identity key pair; only a dialing client may be anonymous");
    }
    if (this.role === "initiator" && (!(this.expectedPeer instanceof Uint8Array) || this.expectedPeer.length !== IDENTITY_KEY_LEN)) {
      throw new LinkError("config", `a dialer must state the peer identity it expects (${IDENTITY_KEY_LEN}-byte Ed25519 key)`);
    }
  }

  get state(): HandshakeStatus {
    return this.status;
  }

  /** The first flight: our VERSIONS cell. Both roles send it as soon as TLS is up. */
  start(): HandshakeStep {
    if (this.started) return this.terminal([]);
    this.started = true;
    return { output: [encodeCell({ circId: 0, command: CellCommand.VERSIONS, payload: this.ourVersionsBody })], status: this.status };
  }

  /** Feeds bytes received from the peer. Never throws. */
  receive(bytes: Uint8Array, now: number): HandshakeStep {
    if (this.status !== "pending") return this.terminal([]);
    if (now >= this.deadline) return this.timeout();
    const output: Uint8Array[] = [];
    if (!this.started) output.push(...this.start().output);
    this.framer.push(bytes, (buf, offset) => this.onCell(buf, offset, output));
    // onCell may have moved the state on (TS cannot see that through the callback).
    if ((this.status as HandshakeStatus) === "done") {
      return { output, status: "done", result: this.result as HandshakeResult, remainder: this.framer.takeRemainder() };
    }
    return this.terminal(output);
  }

  /** Checks the deadline; on expiry fails with "handshake-timeout" and a CLOSE cell to send. */
  tick(now: number): HandshakeStep {
    if (this.status === "pending" && now >= this.deadline) return this.timeout();
    return { output: [], status: this.status };
  }

  private timeout(): HandshakeStep {
    const stage = this.peerVersionsBody ? "AUTH" : "VERSIONS";
    return this.terminal(this.failWith(fail("handshake-timeout", `link handshake timed out waiting for the peer's ${stage} cell`)));
  }

  private terminal(output: Uint8Array[]): HandshakeStep {
    const step: HandshakeStep = { output, status: this.status };
    if (this.error) step.error = this.error;
    if (this.closedByPeer) step.closedByPeer = true;
    if (this.result) step.result = this.result;
    return step;
  }

  /** Records the failure; returns the CLOSE cell to send, if the peer should get one. */
  private failWith(error: LinkError, sendClose = true): Uint8Array[] {
    this.status = "failed";
    this.error = error;
    return sendClose && error.closeReason !== undefined ? [encodeCloseCell(error.closeReason, error.message)] : [];
  }

  private onCell(buf: Uint8Array, offset: number, output: Uint8Array[]): boolean {
    let cell: Cell;
    try {
      cell = decodeCell(buf, offset);
    } catch (err) {
      const kind = err instanceof WireError && err.kind === "unknown-command" ? "unknown-command" : "protocol";
      output.push(...this.failWith(fail(kind, `bad cell during the link handshake: ${(err as Error).message}`)));
      return false;
    }
    switch (cell.command) {
      case CellCommand.PADDING:
        return true;
      case CellCommand.CLOSE: {
        const body = parseClosePayload(cell.payload);
        const kind = kindForPeerCloseReason(body.reason);
        this.closedByPeer = true;
        this.failWith(
          new LinkError(kind, `peer closed the link during the handshake: ${closeReasonName(body.reason)}${body.message ? ` (${body.message})` : ""}`, {
            closeReason: body.reason,
          }),
          false,
        );
        return false;
      }
      case CellCommand.VERSIONS:
        return this.onVersions(cell.payload, output);
      case CellCommand.AUTH:
        return this.onAuth(cell.payload, output);
      default:
        output.push(...this.failWith(fail("protocol", `${cellCommandName(cell.command) ?? cell.command} cell before the link handshake finished`)));
        return false;
    }
  }

  private onVersions(payload: Uint8Array, output: Uint8Array[]): boolean {
    if (this.peerVersionsBody) {
      output.push(...this.failWith(fail("protocol", "peer sent a second VERSIONS cell")));
      return false;
    }
    const parsed = parseVersionsPayload(payload);
    if (parsed instanceof LinkError) {
      output.push(...this.failWith(parsed));
      return false;
    }
    const version = negotiateVersion(this.versions, parsed.versions);
    if (version === undefined) {
      output.push(
        ...this.failWith(
          fail("no-common-version", `no common link version: we speak ${this.versions.join(",")}, the peer speaks ${parsed.versions.join(",")}`),
        ),
      );
      return false;
    }
    this.peerVersionsBody = parsed.body;
    this.version = version;
    // The responder proves itself first; the initiator answers only once it has
    // checked that proof, so it never shows its identity to the wrong node.
    if (this.role === "responder") output.push(this.ourAuthCell());
    return true;
  }

  private ourAuthCell(): Uint8Array {
    let auth: Parameters<typeof encodeAuthPayload>[0] = { method: AUTH_METHOD_ANONYMOUS };
    if (this.identity) {
      const signature = ed25519Sign(this.identity.secretKey, this.transcriptFor(this.role, this.identity.publicKey));
      auth = { method: AUTH_METHOD_ED25519_EKM, identity: this.identity.publicKey, signature };
    }
    return encodeCell({ circId: 0, command: CellCommand.AUTH, payload: encodeAuthPayload(auth) });
  }

  private transcriptFor(signerRole: LinkRole, signerIdentity: Uint8Array): Uint8Array {
    const peer = this.peerVersionsBody as Uint8Array;
    return authTranscript({
      signerRole,
      version: this.version as number,
      initiatorVersions: this.role === "initiator" ? this.ourVersionsBody : peer,
      responderVersions: this.role === "initiator" ? peer : this.ourVersionsBody,
      ekm: this.ekm,
      signerIdentity,
    });
  }

  private onAuth(payload: Uint8Array, output: Uint8Array[]): boolean {
    if (!this.peerVersionsBody) {
      output.push(...this.failWith(fail("protocol", "AUTH cell before VERSIONS")));
      return false;
    }
    const auth = parseAuthPayload(payload);
    if (auth instanceof LinkError) {
      output.push(...this.failWith(auth));
      return false;
    }
    const peerRole: LinkRole = this.role === "initiator" ? "responder" : "initiator";
    let peerIdentity: Uint8Array | undefined;
    if (auth.method === AUTH_METHOD_ANONYMOUS) {
      if (this.role === "initiator") {
        output.push(...this.failWith(fail("anonymous-refused", "the responder did not authenticate; relays must prove their identity")));
        return false;
      }
      if (!this.acceptAnonymous) {
        output.push(...this.failWith(fail("anonymous-refused", "this node does not accept anonymous client links")));
        return false;
      }
    } else {
      if (!ed25519Verify(auth.identity, this.transcriptFor(peerRole, auth.identity), auth.signature)) {
        output.push(...this.failWith(fail("auth-failed", "the peer's AUTH signature does not verify over this TLS session's transcript")));
        return false;
      }
      if (this.expectedPeer && !constantTimeEqual(auth.identity, this.expectedPeer)) {
        output.push(...this.failWith(fail("identity-mismatch", "the peer proved a different identity than the one dialed")));
        return false;
      }
      if (this.identity && constantTimeEqual(auth.identity, this.identity.publicKey)) {
        output.push(...this.failWith(fail("protocol", "the peer proved our own identity: a node does not link to itself")));
        return false;
      }
      peerIdentity = auth.identity;
    }
    if (this.role === "initiator") output.push(this.ourAuthCell());
    this.status = "done";
    this.result = { role: this.role, version: this.version as number, peerIdentity };
    return false; // stop: the remaining bytes belong to the open link
  }
}
