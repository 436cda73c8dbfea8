/**
 * The connection manager: at most one link per peer identity, shared by
 * every layer above (onion, directory, DHT).
 *
 * Owns: the listener; dialing (concurrent getLink calls for one peer share
 * one dial, a closed link is redialed on the next request); the registry of
 * open links by identity and the deterministic rule that settles a duplicate
 * (docs/spec/link.md §7: keep the link dialed by the lower identity); the cap
 * on concurrent links; the per-command cell handlers upper layers register;
 * "link" and "linkClosed" events; shutdown.
 *
 * Also owns the inbound budgets (issue 19; docs/spec/link.md §9): every
 * inbound TCP connection is counted from accept, through TLS and the link
 * handshake, and closed if that takes longer than the inbound handshake
 * deadline; at most `maxPending` of them at once; per source address and
 * /24 (/48) prefix; a smaller cap for anonymous inbound links; and an
 * outbound reserve, links only our own dials may use, so a node whose
 * inbound side is full can still reach discovery and DHT peers.
 *
 * Trusts: link.ts for authentication (a link only reaches the registry once
 * its peer proved its identity) and the caller for its own identity key.
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { connect as tlsConnect, createServer } from "node:tls";
import type { Server, TLSSocket } from "node:tls";
import { compareBytes } from "../base/bytes.js";
import { hexOf } from "../base/hex.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { isLinkCommand } from "../wire/cell.js";
import type { Cell } from "../wire/cell.js";
import { IDENTITY_KEY_LEN } from "./cells.js";
import { CloseReason, LINK_CAPS, LinkError } from "./errors.js";
import type { LinkCap } from "./errors.js";
import { DEFAULT_LINK_OPTIONS, Link, handshakeFailureReportedOnClose } from "./link.js";
import type { LinkCellHandler, LinkCloseInfo, LinkOptions } from "./link.js";
import { SourceCounts, sourceKeys } from "./sources.js";
import { clientTlsOptions, generateTlsCredentials, serverTlsOptions, STREAM_ALPN } from "./tls.js";
import type { TlsCredentials } from "./tls.js";

/** Where and who a peer is. The identity is what the link must prove. */
export interface PeerAddress {
  identity: Uint8Array;
  host: string;
  port: number;
}

/** The inbound budgets; every field has a default (see inboundLimits). */
export interface InboundLimits {
  /** Links kept for our own dials: inbound connections are refused once maxLinks less this many are held (default maxLinks/16, at most 64). */
  outboundReserve: number;
  /** Anonymous (client) inbound links at once (default half of maxLinks less the reserve). */
  maxAnonymous: number;
  /** Inbound connections in TCP, TLS or the link handshake at once (default 256, at most maxLinks). */
  maxPending: number;
  /** Inbound connections still handshaking plus anonymous links, per source address (default 16). */
  maxPerAddress: number;
  /** The same per /24 (IPv4) or /48 (IPv6) prefix (default 64). */
  maxPerPrefix: number;
  /** From TCP accept to the end of the link handshake (ms; default: link.handshakeTimeoutMs, 10 s). */
  handshakeTimeoutMs: number;
  /** Loopback sources skip the per-address and per-prefix caps (default true: a devnet on one machine is all 127.0.0.1). */
  exemptLoopback: boolean;
}

export interface ConnectionManagerOptions {
  /** Our node identity. Absent: client mode (dials anonymously, cannot listen). */
  identity?: Ed25519KeyPair;
  /**
   * Whether an inbound peer that proved `identity` counts as a node (in a
   * node, "listed in the consensus it holds"). One that does not is admitted
   * like an anonymous client link (the anonymous cap and the per-source
   * caps), since anyone can make an identity key. Default: every proven
   * identity counts as a node.
   */
  isKnownNode?: (identity: Uint8Array) => boolean;
  /** Listen for links here (port 0: any free port, see `address()`). */
  listen?: { host: string; port: number };
  /** At most this many links at once, handshaking ones included (default 1024). */
  maxLinks?: number;
  /** Budgets for links our peers open (issue 19): see InboundLimits. */
  inbound?: Partial<InboundLimits>;
  /** Timers, queue cap, versions, anonymous clients: see LinkOptions. */
  link?: Partial<LinkOptions>;
  /** TLS certificate; a throwaway one is generated when absent. */
  tlsCredentials?: TlsCredentials;
  /** Logs as component "link" (the manager and every link it holds); silent when absent. */
  logger?: Logger;
}

export interface ConnectionManagerEvents {
  /** A link finished its handshake and is registered (inbound or outbound, nodes and clients). */
  link: [Link];
  /** A link announced by "link" closed (retired duplicates included). */
  linkClosed: [Link, LinkCloseInfo];
}

export interface ManagerStats {
  /** Cells that arrived for a command nobody registered a handler for (dropped). */
  unhandledCells: number;
  /** Inbound connections refused at any cap (the sum of `refusals`). */
  refusedAtCap: number;
  /** Inbound connections refused, by the cap that was full. */
  refusals: Record<LinkCap, number>;
  /** Inbound connections closed because TLS and the link handshake did not finish in time. */
  handshakeTimeouts: number;
  /** Links retired as duplicates of another link to the same peer (they close once unused). */
  duplicatesRetired: number;
}

export class ConnectionManager extends EventEmitter<ConnectionManagerEvents> {
  readonly stats: ManagerStats = {
    unhandledCells: 0,
    refusedAtCap: 0,
    refusals: Object.fromEntries(LINK_CAPS.map((c) => [c, 0])) as Record<LinkCap, number>,
    handshakeTimeouts: 0,
    duplicatesRetired: 0,
  };
  private readonly identity: Ed25519KeyPair | undefined;
  private readonly maxLinks: number;
  readonly inboundLimits: InboundLimits;
  private readonly isKnownNode: (identity: Uint8Array) => boolean;
  private readonly sources: SourceCounts;
  /** Inbound connections from TCP accept until their link handshake ends, by remote "address|port". */
  private readonly inbound = new Map<string, InboundConnection>();
  /** Of those, the ones still in TCP/TLS (no Link yet): counted in linkCount. */
  private inboundInTls = 0;
  /** Anonymous inbound links open now. */
  private anonymousInbound = 0;
  /** Refusals of one source repeat at its pace: a line a minute per cap at most, each counted. */
  private readonly logSourceRefusal: ReturnType<typeof throttledFailureLog>;
  private readonly linkOptions: LinkOptions;
  private readonly credentials: TlsCredentials;
  private readonly log: Logger;
  /** Refusals at the link cap repeat at an attacker's pace: one line a minute, each counted. */
  private readonly logCapRefusal: ReturnType<typeof throttledFailureLog>;
  private server: Server | undefined;
  private readonly byPeer = new Map<string, Link>();
  private readonly dials = new Map<string, Promise<Link>>();
  /** Every link we hold, handshaking or open, plus sockets still in TLS. */
  private readonly all = new Set<Link>();
  private pendingSockets = new Set<TLSSocket>();
  private readonly handlers: (LinkCellHandler | undefined)[] = new Array<LinkCellHandler | undefined>(256);
  /** Takes TLS sockets that chose STREAM_ALPN (node/src/stream); absent: they are closed. */
  private streamHandler: ((socket: TLSSocket) => void) | undefined;
  private shuttingDown = false;
  /** Links we emitted "link" for: exactly these get a "linkClosed". */
  private readonly announced = new WeakSet<Link>();
  private readonly dispatch: LinkCellHandler = (cell: Cell, link: Link) => {
    const handler = this.handlers[cell.command];
    if (handler) handler(cell, link);
    else this.stats.unhandledCells++;
  };

  /** Use createConnectionManager, which also generates TLS credentials and starts listening. */
  constructor(options: ConnectionManagerOptions & { tlsCredentials: TlsCredentials }) {
    super();
    this.identity = options.identity;
    this.maxLinks = options.maxLinks ?? 1024;
    this.linkOptions = { ...DEFAULT_LINK_OPTIONS, ...options.link };
    this.credentials = options.tlsCredentials;
    this.log = childLogger(options.logger, "link");
    this.logCapRefusal = throttledFailureLog(this.log);
    this.logSourceRefusal = throttledFailureLog(this.log);
    if (!Number.isInteger(this.maxLinks) || this.maxLinks < 1) {
      throw new LinkError("config", `maxLinks must be a positive integer, got ${String(options.maxLinks)}`);
    }
    this.inboundLimits = inboundLimits(options.inbound, this.maxLinks, this.linkOptions.handshakeTimeoutMs);
    this.isKnownNode = options.isKnownNode ?? (() => true);
    this.sources = new SourceCounts(this.inboundLimits);
    if (options.identity && (options.identity.publicKey?.length !== IDENTITY_KEY_LEN || options.identity.secretKey?.length !== 32)) {
      throw new LinkError("config", "identity must be an Ed25519 key pair from generateEd25519KeyPair()");
    }
    if (options.listen && !options.identity) {
      throw new LinkError("config", "a client (no identity) cannot listen for links: give the manager an identity to run as a node");
    }
  }

  /** Our identity public key, or undefined in client mode. */
  get identityKey(): Uint8Array | undefined {
    return this.identity?.publicKey;
  }

  /** Starts the listener. Called by createConnectionManager. */
  async listen(at: { host: string; port: number }): Promise<void> {
    // TLS's own handshake timeout is only a backstop: ours (onAccept) fires first and is counted.
    const server = createServer({ ...serverTlsOptions(this.credentials), handshakeTimeout: this.inboundLimits.handshakeTimeoutMs + 1000 });
    // Before TLS starts (prepended: ahead of the TLS server's own listener), so sockets that never speak TLS are counted too.
    server.prependListener("connection", (socket: Socket) => this.onAccept(socket));
    server.on("secureConnection", (socket) => this.onInbound(socket));
    // A failed inbound TLS handshake (scanner, garbage) only costs that socket: counted, a debug line.
    server.on("tlsClientError", (err, socket) => {
      if (!socket.destroyed || this.inbound.has(connectionKey(socket)))
        logFailure(this.log, err, "inbound TLS handshake", "debug", { from: socket.remoteAddress });
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(at.port, at.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    // After listen, an error (e.g. too many open files on accept) is the listener's, not a link's: it keeps listening.
    server.on("error", (err) => logFailure(this.log, err, "accept links", "warn"));
    this.server = server;
    this.log.debug({ host: at.host, port: this.address()?.port }, "listening for links");
  }

  /** Where we listen, once listening. */
  address(): { host: string; port: number } | undefined {
    const addr = this.server?.address();
    return addr && typeof addr === "object" ? { host: addr.address, port: addr.port } : undefined;
  }

  /** Open links, node and client ones, without retired duplicates. */
  links(): Link[] {
    return [...this.all].filter((l) => l.isOpen && !l.retired);
  }

  /** Links counted against maxLinks (handshaking, open and closing ones, and TLS-stage sockets both ways). */
  get linkCount(): number {
    return this.all.size + this.pendingSockets.size + this.inboundInTls;
  }

  /** Inbound connections accepted whose TLS or link handshake has not finished yet. */
  get pendingInbound(): number {
    return this.inbound.size;
  }

  /** Anonymous client links that dialed us and are open. */
  get anonymousInboundLinks(): number {
    return this.anonymousInbound;
  }

  /** The open link to this identity, if there is one. */
  findLink(identity: Uint8Array): Link | undefined {
    const link = this.byPeer.get(hexOf(identity));
    return link?.isOpen ? link : undefined;
  }

  /**
   * The open link to `peer`, dialing one if needed. Concurrent calls share one
   * dial. Rejects with LinkError: "identity-mismatch" if the peer at that
   * address proves another identity, "link-cap", "handshake-timeout",
   * "transport", "peer-closed", "manager-closed", "config".
   */
  getLink(peer: PeerAddress): Promise<Link> {
    if (this.shuttingDown) return Promise.reject(new LinkError("manager-closed", "the connection manager is closed"));
    if (!(peer?.identity instanceof Uint8Array) || peer.identity.length !== IDENTITY_KEY_LEN) {
      return Promise.reject(new LinkError("config", `peer.identity must be a ${IDENTITY_KEY_LEN}-byte Ed25519 public key`));
    }
    if (typeof peer.host !== "string" || !Number.isInteger(peer.port) || peer.port < 1 || peer.port > 65535) {
      return Promise.reject(new LinkError("config", `peer needs a host string and a port in 1..65535, got ${String(peer.host)}:${String(peer.port)}`));
    }
    if (this.identity && compareBytes(peer.identity, this.identity.publicKey) === 0) {
      return Promise.reject(new LinkError("config", "that is our own identity: a node does not link to itself"));
    }
    const key = hexOf(peer.identity);
    const existing = this.byPeer.get(key);
    if (existing?.isOpen) return Promise.resolve(existing);
    const pending = this.dials.get(key);
    if (pending) return pending;
    if (this.linkCount >= this.maxLinks) {
      return Promise.reject(new LinkError("link-cap", `already holding ${this.linkCount} links (maxLinks ${this.maxLinks}); close some or raise the cap`));
    }
    const dial = this.dial(peer, key).finally(() => {
      if (this.dials.get(key) === dial) this.dials.delete(key);
    });
    this.dials.set(key, dial);
    return dial;
  }

  /**
   * Registers the handler for one cell command (RELAY, CREATE, ...), for
   * every link. One handler per command; returns a function that removes it.
   */
  handle(command: number, handler: LinkCellHandler): () => void {
    if (!Number.isInteger(command) || command < 0 || command > 255) {
      throw new LinkError("config", `cell command must be a byte, got ${String(command)}`);
    }
    if (isLinkCommand(command)) {
      throw new LinkError("config", `command ${command} is link control (PADDING, VERSIONS, AUTH, CLOSE) and is handled by the link itself`);
    }
    if (this.handlers[command]) throw new LinkError("config", `a handler for cell command ${command} is already registered`);
    this.handlers[command] = handler;
    return () => {
      if (this.handlers[command] === handler) this.handlers[command] = undefined;
    };
  }

  /** Closes every link (CLOSE SHUTDOWN) and the listener; pending dials reject with "manager-closed". */
  async close(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    const serverClosed = this.server ? new Promise<void>((resolve) => (this.server as Server).close(() => resolve())) : Promise.resolve();
    for (const socket of this.pendingSockets) socket.destroy();
    this.pendingSockets.clear();
    for (const conn of [...this.inbound.values()]) conn.socket.destroy();
    await Promise.all([...this.all].map((l) => l.close(CloseReason.SHUTDOWN, "node shutting down")));
    await Promise.allSettled([...this.dials.values()]);
    await serverClosed;
  }

  // ------------------------------------------------------------ internals

  private dial(peer: PeerAddress, key: string): Promise<Link> {
    const startedAt = performance.now();
    return new Promise<Link>((resolve, reject) => {
      const socket = tlsConnect(clientTlsOptions(peer.host, peer.port));
      this.pendingSockets.add(socket);
      const timer = setTimeout(() => {
        this.pendingSockets.delete(socket);
        socket.destroy();
        reject(new LinkError("handshake-timeout", `TLS to ${peer.host}:${peer.port} did not complete within ${this.linkOptions.handshakeTimeoutMs} ms`));
      }, this.linkOptions.handshakeTimeoutMs);
      timer.unref();
      const onError = (err: Error): void => {
        clearTimeout(timer);
        this.pendingSockets.delete(socket);
        reject(new LinkError("transport", `could not reach ${peer.host}:${peer.port}: ${err.message}`, { cause: err }));
      };
      // A socket destroyed before TLS completes (close() does that to pending dials) emits neither error nor
      // secureConnect: without this the dial would wait for its unref'd timer, and close() with it.
      const onClose = (): void => {
        clearTimeout(timer);
        this.pendingSockets.delete(socket);
        reject(
          this.shuttingDown
            ? new LinkError("manager-closed", "the connection manager closed while dialing")
            : new LinkError("transport", `the connection to ${peer.host}:${peer.port} closed before TLS completed`),
        );
      };
      socket.on("error", onError);
      socket.once("close", onClose);
      socket.once("secureConnect", () => {
        clearTimeout(timer);
        socket.off("error", onError);
        socket.off("close", onClose);
        this.pendingSockets.delete(socket);
        if (this.shuttingDown) {
          socket.destroy();
          reject(new LinkError("manager-closed", "the connection manager closed while dialing"));
          return;
        }
        const link = new Link({
          socket,
          role: "initiator",
          identity: this.identity,
          expectedPeer: peer.identity,
          options: this.linkOptions,
          startedAt,
          logger: this.log,
        });
        this.track(link);
        link.ready.then(
          () => resolve(this.register(link, key)),
          (err: LinkError) => reject(err),
        );
      });
    });
  }

  /** A TCP connection was accepted: counted (and maybe refused) before any TLS work is spent on it. */
  private onAccept(socket: Socket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    const keys = sourceKeys(socket.remoteAddress);
    const cap = this.inbound.size >= this.inboundLimits.maxPending ? "pending" : this.sources.wouldBreak(keys);
    if (cap !== undefined) {
      // No TLS yet, so no CLOSE cell can say why: the socket is just closed.
      const limit =
        cap === "pending" ? this.inboundLimits.maxPending : cap === "per-address" ? this.inboundLimits.maxPerAddress : this.inboundLimits.maxPerPrefix;
      this.refuse(
        cap,
        `${limit} inbound connections ${cap === "pending" ? "already handshaking" : `from ${cap === "per-address" ? keys.address : keys.prefix}`}; try later`,
      );
      socket.destroy();
      return;
    }
    const key = connectionKey(socket);
    const conn: InboundConnection = { socket, keys, acceptedAt: performance.now(), counted: true, inTls: true, timer: undefined };
    this.inbound.set(key, conn);
    this.inboundInTls++;
    this.sources.add(keys);
    conn.timer = setTimeout(() => {
      // Still in TCP/TLS (a Link has its own deadline from the same start): a raw connection that never finished TLS.
      this.stats.handshakeTimeouts++;
      socket.destroy();
    }, this.inboundLimits.handshakeTimeoutMs);
    conn.timer.unref();
    socket.once("close", () => this.forgetInbound(key, conn));
  }

  /** Ends the handshake stage of an inbound connection; its source stays counted while `keepSource` (anonymous links). */
  private forgetInbound(key: string, conn: InboundConnection, keepSource = false): void {
    clearTimeout(conn.timer);
    if (conn.inTls) {
      conn.inTls = false;
      this.inboundInTls--;
    }
    if (this.inbound.get(key) === conn) this.inbound.delete(key);
    if (conn.counted && !keepSource) {
      conn.counted = false;
      this.sources.remove(conn.keys);
    }
  }

  /** Hands every inbound TLS connection that negotiated STREAM_ALPN to `handler` (one handler; undefined removes it). */
  setStreamHandler(handler: ((socket: TLSSocket) => void) | undefined): void {
    this.streamHandler = handler;
  }

  private onInbound(socket: TLSSocket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    const key = connectionKey(socket);
    const conn = this.inbound.get(key);
    if (socket.alpnProtocol === STREAM_ALPN) {
      // A stream link: not a Link, not counted in maxLinks; the stream layer keeps its own caps and deadlines.
      if (conn) this.forgetInbound(key, conn);
      if (this.streamHandler) this.streamHandler(socket);
      else socket.destroy();
      return;
    }
    if (conn?.inTls) {
      clearTimeout(conn.timer); // from here the link's own handshake deadline, from the same start, applies
      conn.inTls = false;
      this.inboundInTls--;
    }
    const options = { ...this.linkOptions, handshakeTimeoutMs: this.inboundLimits.handshakeTimeoutMs };
    const link = new Link({ socket, role: "responder", identity: this.identity, options, startedAt: conn?.acceptedAt ?? performance.now(), logger: this.log });
    const inboundCap = this.maxLinks - this.inboundLimits.outboundReserve;
    if (this.linkCount >= inboundCap) {
      const reserve = this.inboundLimits.outboundReserve > 0 ? ` (${this.inboundLimits.outboundReserve} more are kept for our own dials)` : "";
      link.fail(this.refuse("links", `this node holds its maximum of ${inboundCap} inbound links${reserve}; try later`));
      return;
    }
    this.track(link);
    link.ready.then(
      () => this.onInboundReady(link, key, conn),
      (err: LinkError) => {
        // The peer's problem, reported when the link closes; here only the counts.
        if (err.kind === "handshake-timeout") this.stats.handshakeTimeouts++;
        if (conn) this.forgetInbound(key, conn);
        handshakeFailureReportedOnClose();
      },
    );
  }

  private onInboundReady(link: Link, key: string, conn: InboundConnection | undefined): void {
    if (!link.isOpen) {
      // Closed between its handshake and here: nothing to admit, and no "close" event left to undo a count.
      if (conn) this.forgetInbound(key, conn);
      return;
    }
    const peer = link.peerIdentity;
    if (peer !== undefined && this.isKnownNode(peer)) {
      // A known node leaves the per-source counts (nodes share hosting networks); maxLinks still holds it.
      if (conn) this.forgetInbound(key, conn);
      this.register(link, hexOf(peer));
      return;
    }
    if (this.anonymousInbound >= this.inboundLimits.maxAnonymous) {
      if (conn) this.forgetInbound(key, conn);
      link.fail(this.refuse("anonymous", `this node holds its maximum of ${this.inboundLimits.maxAnonymous} anonymous client links; try later`));
      return;
    }
    // An anonymous link (or one from an identity no consensus lists) keeps its source counted until it closes.
    if (conn) this.forgetInbound(key, conn, true);
    this.anonymousInbound++;
    link.once("close", () => {
      this.anonymousInbound--;
      if (conn?.counted) {
        conn.counted = false;
        this.sources.remove(conn.keys);
      }
    });
    this.register(link, peer === undefined ? undefined : hexOf(peer));
  }

  /** Counts and logs (throttled) one refused inbound connection; returns the error to close it with. */
  private refuse(cap: LinkCap, message: string): LinkError {
    this.stats.refusedAtCap++;
    this.stats.refusals[cap]++;
    const perSource = cap === "per-address" || cap === "per-prefix";
    const refusal = new LinkError(perSource ? "source-cap" : "link-cap", message, { closeReason: CloseReason.LINK_CAP, cap });
    // A full node-wide cap may mean maxLinks is too low for this node: a warning. One source past its share is that source's doing: debug.
    if (perSource) this.logSourceRefusal(refusal, `accept link (${cap})`, "debug");
    else this.logCapRefusal(refusal, `accept link (${cap})`, "warn");
    return refusal;
  }

  private track(link: Link): void {
    this.all.add(link);
    link.once("close", (info) => {
      this.all.delete(link);
      const peer = link.peerIdentity;
      const registered = peer !== undefined && this.byPeer.get(hexOf(peer)) === link;
      if (registered) this.byPeer.delete(hexOf(peer));
      if (this.announced.has(link)) this.emit("linkClosed", link, info);
    });
  }

  /**
   * Puts a freshly authenticated link in the registry and returns the link
   * callers should use for that peer. A second link to the same identity is a
   * duplicate: both ends keep the one whose initiator has the lower identity
   * key, so they agree without talking; the other is retired: it gets no new
   * users and closes with DUPLICATE_LINK once its current users are done.
   */
  private register(link: Link, key: string | undefined): Link {
    if (!link.isOpen) return link; // closed between handshake and here; callers see its state
    if (key === undefined) {
      link.setCellHandler(this.dispatch); // anonymous client link
      this.announce(link);
      return link;
    }
    const existing = this.byPeer.get(key);
    if (existing && existing !== link && existing.isOpen) {
      const winner = this.preferred(existing, link);
      const loser = winner === existing ? link : existing;
      this.stats.duplicatesRetired++;
      // Not closed at once: a caller may already hold the loser; it closes when unused.
      loser.setCellHandler(this.dispatch);
      loser.retire();
      if (winner === existing) return existing;
      this.byPeer.set(key, link);
    } else {
      this.byPeer.set(key, link);
    }
    link.setCellHandler(this.dispatch);
    this.announce(link);
    return link;
  }

  private announce(link: Link): void {
    this.announced.add(link);
    this.emit("link", link);
  }

  private initiatorOf(link: Link): Uint8Array {
    return link.role === "initiator" ? (this.identity as Ed25519KeyPair).publicKey : (link.peerIdentity as Uint8Array);
  }

  private preferred(a: Link, b: Link): Link {
    if (!this.identity) return a; // clients never receive links, so never see duplicates
    const order = compareBytes(this.initiatorOf(a), this.initiatorOf(b));
    if (order !== 0) return order < 0 ? a : b;
    return a.id < b.id ? a : b; // same initiator twice: keep the older
  }
}

interface InboundConnection {
  socket: Socket;
  keys: { address: string; prefix: string };
  acceptedAt: number;
  /** Still counted in the per-source counts. */
  counted: boolean;
  /** Still in TCP/TLS: counted in linkCount. */
  inTls: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Matches the TLS socket to the TCP connection it was accepted as. */
function connectionKey(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return `${socket.remoteAddress ?? "?"}|${socket.remotePort ?? "?"}`;
}

/** The inbound budgets with defaults filled in and checked against maxLinks. */
export function inboundLimits(given: Partial<InboundLimits> | undefined, maxLinks: number, linkHandshakeTimeoutMs: number): InboundLimits {
  if (given !== undefined && (typeof given !== "object" || given === null)) throw new LinkError("config", "inbound must be an object of limits");
  const outboundReserve = given?.outboundReserve ?? Math.min(64, Math.floor(maxLinks / 16));
  const defaults: InboundLimits = {
    outboundReserve,
    maxAnonymous: Math.max(1, Math.floor((maxLinks - outboundReserve) / 2)),
    maxPending: Math.min(256, maxLinks),
    maxPerAddress: 16,
    maxPerPrefix: 64,
    handshakeTimeoutMs: linkHandshakeTimeoutMs,
    exemptLoopback: true,
  };
  const known = new Set(Object.keys(defaults));
  for (const key of Object.keys(given ?? {})) if (!known.has(key)) throw new LinkError("config", `inbound.${key} is not a limit; use ${[...known].join(", ")}`);
  const l = { ...defaults, ...given };
  for (const key of ["maxAnonymous", "maxPending", "maxPerAddress", "maxPerPrefix", "handshakeTimeoutMs"] as const) {
    if (!Number.isInteger(l[key]) || l[key] < 1) throw new LinkError("config", `inbound.${key} must be a positive integer, got ${String(l[key])}`);
  }
  if (!Number.isInteger(l.outboundReserve) || l.outboundReserve < 0 || l.outboundReserve >= maxLinks) {
    throw new LinkError("config", `inbound.outboundReserve must be an integer in 0..${maxLinks - 1} (below maxLinks), got ${String(l.outboundReserve)}`);
  }
  if (l.maxAnonymous > maxLinks - l.outboundReserve) {
    throw new LinkError(
      "config",
      `inbound.maxAnonymous (${l.maxAnonymous}) must be at most maxLinks less inbound.outboundReserve (${maxLinks - l.outboundReserve})`,
    );
  }
  if (l.maxPerPrefix < l.maxPerAddress)
    throw new LinkError("config", `inbound.maxPerPrefix (${l.maxPerPrefix}) must be at least inbound.maxPerAddress (${l.maxPerAddress})`);
  if (typeof l.exemptLoopback !== "boolean") throw new LinkError("config", "inbound.exemptLoopback must be true or false");
  return l;
}

/**
 * Creates a connection manager: generates a throwaway TLS certificate (unless
 * given one) and, with `listen`, starts accepting links.
 */
export async function createConnectionManager(options: ConnectionManagerOptions = {}): Promise<ConnectionManager> {
  const tlsCredentials = options.tlsCredentials ?? (await generateTlsCredentials());
  const manager = new ConnectionManager({ ...options, tlsCredentials });
  if (options.listen) await manager.listen(options.listen);
  return manager;
}
