/**
 * `createPspClient`: the one object an application uses (arti-client's
 * TorClient is the model). It owns an anonymous connection manager, the
 * consensus client (fetch, verify K of N against its trust roots, refresh,
 * optionally keep the consensus on disk), the onion client with preemptive
 * circuits following every new consensus, a DHT session through a circuit,
 * and access certificates from the authorities through circuits. Presence,
 * messaging and streams hang on this same object as they are built.
 *
 * Lifecycle: `createPspClient` checks the options, reads the bootstrap
 * source and the identity key, and starts bootstrapping; `ready` resolves
 * once a verified consensus is held and (with preemptive circuits) the
 * first circuit is built, or rejects with ClientError "no-consensus" /
 * "no-circuit" after `readyTimeoutMs`. Every operation waits for `ready`.
 * `close()` ends circuits, links and timers.
 *
 * Events: "consensus" (a newer verified consensus), "circuit" (preemptive
 * circuits built, lost, failed), "certificate" (a new certificate), and
 * "warning" for every failure in the background (a refused fetch, a failed
 * build, a DHT session lost): nothing fails silently. With `logger`, each
 * warning is also logged (component "client", with the operation that
 * failed), and the layers the client runs log beneath the same logger.
 *
 * Trusts: the discovery keys it is given (the consensus), the link layer for
 * node identities, the authority layer's checks of every endorsement, the
 * DHT layer's validation of every record a proxy returns.
 */
import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import { circuitAuthorityTransport } from "../authority/circuit.js";
import { createOracleClient, type OracleClient } from "../stream/oracle-client.js";
import { hexOf } from "../base/hex.js";
import { withTimeout } from "../base/timeout.js";
import { defaultCertificateThreshold } from "../authority/certificate.js";
import { requestAccessCertificateWhenConfirmed } from "../authority/node.js";
import { ed25519PublicKey } from "../crypto/ed25519.js";
import { formatIdentity, isIdentityKind, parseIdentity } from "../crypto/identity.js";
import type { IdentityKind } from "../crypto/identity.js";
import { decryptKeyFile } from "../crypto/keyfile.js";
import { ConsensusClient } from "../directory/client.js";
import { NodeFlag } from "../directory/config.js";
import type { VerifiedConsensus } from "../directory/consensus.js";
import { consensusToPathNodes } from "../directory/path-nodes.js";
import { createCircuitDhtClient } from "../dht/proxy.js";
import type { CircuitDhtClient, CircuitDhtPutResult } from "../dht/proxy.js";
import { recordKey, signRecordAsOwner } from "../dht/record.js";
import type { DhtRecord, OwnerSignedRecord } from "../dht/record.js";
import { DhtError } from "../dht/errors.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { createConnectionManager } from "../link/manager.js";
import type { ConnectionManager } from "../link/manager.js";
import { createLinkRpc } from "../link/rpc.js";
import type { LinkRpc } from "../link/rpc.js";
import { createOnionClient } from "../onion/onion-client.js";
import type { OnionCircuit, OnionClientHandle, OnionStream } from "../onion/onion-client.js";
import type { PathNode } from "../onion/path.js";
import { verifyAccessCertificateWithConsensus } from "../authority/certificate.js";
import { PresenceClient } from "../presence/client.js";
import { createPspStreams } from "../stream/client-streams.js";
import { signUsageReport } from "../rewards/report.js";
import { isFinalReportRefusal } from "../stream/oracle-errors.js";
import type { PspStreams } from "../stream/client-streams.js";
import type { AnnounceOptions, ConnectOptions, FoundPoint, IncomingIntroduction, PointInfo } from "../presence/client.js";
import type { PresenceChannel } from "../presence/channel.js";
import type { CapName } from "../presence/messages.js";
import { applicationId } from "../chain/attestation.js";
import { applicationNodes, chooseApplicationNode, commercialErrorOf, openCommercial } from "../commercial/client.js";
import type { CommercialConnection } from "../commercial/client.js";
import { CommercialError } from "../commercial/errors.js";
import { COMMERCIAL_SERVICE } from "../commercial/messages.js";
import { resolveBootstrap } from "./bootstrap.js";
import type { BootstrapOption, ChainBinding, ResolvedBootstrap } from "./bootstrap.js";
import { ClientError } from "./errors.js";

/** The app's identity: an encrypted key file (`psp identity create`), or the key itself. */
export type IdentityOption =
  | { keyFile: string; passphrase: string; namespace?: string; application?: string; kind?: IdentityKind }
  | { secretKey: Uint8Array; namespace?: string; application?: string; kind?: IdentityKind };

export interface PspClientOptions {
  /** Where to start: a devnet state file, nodes plus discovery keys, or a consensus file plus discovery keys. */
  bootstrap: BootstrapOption;
  /** The app's identity (certificates, DHT records); default namespace "peerstream", application "client", kind "account". */
  identity?: IdentityOption;
  /** The PKI deployment certificates are bound to (a devnet bootstrap names its own). */
  chain?: ChainBinding;
  /** Circuits kept built and ready (default 2). */
  preemptiveCircuits?: number;
  /** Seconds between a player's usage reports to the oracles (default 300). */
  reportIntervalSeconds?: number;
  /** How long `ready` may take (default 60 s). */
  readyTimeoutMs?: number;
  /** Deadline of one DHT operation (default 15 s). */
  dhtTimeoutMs?: number;
  /** Presence time period in minutes: a network parameter every user shares (default 1440, as Tor). */
  presencePeriodMinutes?: number;
  /** Where the client and its layers log (every "warning" is logged too); silent when absent. */
  logger?: Logger;
}

export interface ConsensusSummary {
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  /** Nodes listed. */
  nodes: number;
  /** Trusted signatures it carries. */
  signers: number;
}

export interface CertificateInfo {
  /** The certificate as nodes take it. */
  bytes: Uint8Array;
  identity: string;
  identityId: `0x${string}`;
  /** Unix seconds. */
  notBefore: number;
  notAfter: number;
  /** Authorities whose endorsements it carries. */
  authorities: number;
}

export type CircuitEvent =
  { type: "ready"; circuitId: number; path: string[] } | { type: "lost"; circuitId: number; error?: string } | { type: "build-failed"; error: string };

export interface PspClientEvents {
  consensus: [ConsensusSummary];
  circuit: [CircuitEvent];
  certificate: [CertificateInfo];
  /** Someone asks to open a private channel: answer with accept() or refuse(). Without a listener every introduction is refused. */
  introduction: [IncomingIntroduction];
  /** A private channel opened (by connect, or by accepting an introduction). */
  channel: [PresenceChannel];
  /** A presence point came up, was lost or replaced. */
  presence: [PointInfo];
  /** A presence node reports a cap of this user's reached (the client opens another point unless told not to). */
  "cap-reached": [{ slot: number; cap: CapName; limit: number }];
  warning: [Error];
}

/** Presence: being findable and reachable by identity (docs/spec/presence.md). */
export interface PspPresence {
  /** Registers presence points (3 by default) and keeps them; resolves once one is up. */
  announce(options?: AnnounceOptions): Promise<PointInfo[]>;
  /** Stops keeping presence points (their records expire on their own). */
  withdraw(): void;
  /** The presence points now. */
  status(): PointInfo[];
}

/** A record to publish under the client's identity. */
export interface DhtPutInput {
  name: string;
  value: Uint8Array;
  /** Lifetime from now (default 1 h). */
  ttlMs?: number;
  /** Sequence number (default: milliseconds since the epoch, so each put supersedes the last). */
  seq?: number;
}

/** A record's key: its 32 bytes, or the owner (identity string or 32-byte key) and the record name. */
export type DhtKey = Uint8Array | { owner: string | Uint8Array; name: string };

export interface PspDht {
  /** The newest valid record under `key`, or undefined. Rejects with DhtError. */
  get(key: DhtKey): Promise<DhtRecord | undefined>;
  /** Publishes a record: signed here with the client's identity, or one already owner-signed. Rejects with DhtError. */
  put(record: DhtPutInput | OwnerSignedRecord): Promise<CircuitDhtPutResult>;
}

export interface CircuitOptions {
  /** The last hop: a node's identity key (hex or bytes), which must be in the consensus. Default: any. */
  lastHop?: string | Uint8Array;
}

/** How to reach an application's service (PspClient.app().connect). */
export interface AppConnectOptions {
  /**
   * Connect over a 1-hop circuit: the commercial node learns the user's
   * address. Only where the app says anonymity is not needed (default false:
   * a 3-hop circuit ending at the node).
   */
  direct?: boolean;
  /**
   * Present the client's access certificate: true always, false never;
   * default: only when the service answers "needs-identity" and the client
   * has an identity (then a second open on a fresh circuit).
   */
  identity?: boolean;
  /** Use this node (hex identity) instead of a random one of the application's. */
  node?: string;
  /** Deadline of the open and of each request, ms (default 15 s). */
  timeoutMs?: number;
}

/** An application's commercial nodes as the consensus lists them (docs/spec/commercial.md "Client"). */
export interface PspApp {
  /** "<namespace>.<application>". */
  readonly name: string;
  /** IdentityRegistry.applicationIdOf. */
  readonly appId: `0x${string}`;
  /** Identities (hex) of the nodes the held consensus lists for the application. */
  nodes(): string[];
  /**
   * Opens a connection to `service` at one of the application's nodes, chosen
   * at random, through a circuit of its own (closed with the connection).
   * Rejects with CommercialError ("no-nodes", a node's refusal kind,
   * "unreachable", "timeout").
   */
  connect(service: string, options?: AppConnectOptions): Promise<CommercialConnection>;
}

const DEFAULT_PREEMPTIVE = 2;
const DEFAULT_READY_TIMEOUT_MS = 60_000;
const DEFAULT_TTL_MS = 3600_000;
/** A held certificate is renewed when less than this is left. */
const CERT_RENEW_MARGIN_S = 300;

/** What a consensus amounts to for an app: its times, nodes listed and trusted signatures. */
export function consensusSummary(c: VerifiedConsensus): ConsensusSummary {
  return { validAfter: c.validAfter, freshUntil: c.freshUntil, validUntil: c.validUntil, nodes: c.entries.length, signers: c.signers.length };
}

interface LoadedIdentity {
  secretKey: Uint8Array;
  text: string;
}

async function loadIdentity(option: IdentityOption | undefined): Promise<LoadedIdentity | undefined> {
  if (option === undefined) return undefined;
  if (typeof option !== "object" || option === null) throw new ClientError("bad-option", "identity must be { keyFile, passphrase } or { secretKey }");
  const kind = option.kind ?? "account";
  if (!isIdentityKind(kind)) throw new ClientError("bad-option", "identity.kind must be account, node or group");
  let secretKey: Uint8Array;
  if ("keyFile" in option) {
    if (typeof option.passphrase !== "string") throw new ClientError("bad-option", "identity.passphrase must be the key file's passphrase");
    let text: string;
    try {
      text = await readFile(option.keyFile, "utf8");
    } catch (err) {
      throw new ClientError("bad-option", `cannot read identity.keyFile ${option.keyFile} (make one with \`psp identity create\`)`, { cause: err });
    }
    const key = await decryptKeyFile(text, option.passphrase);
    if (key.keyType !== "ed25519") throw new ClientError("bad-option", `${option.keyFile} holds an ${key.keyType} key; identities are Ed25519`);
    secretKey = key.secretKey;
  } else {
    if (!(option.secretKey instanceof Uint8Array) || option.secretKey.length !== 32)
      throw new ClientError("bad-option", "identity.secretKey must be a 32-byte Ed25519 seed");
    secretKey = option.secretKey;
  }
  const text = formatIdentity({
    namespace: option.namespace ?? "peerstream",
    application: option.application ?? "client",
    kind,
    publicKey: ed25519PublicKey(secretKey),
  });
  return { secretKey, text };
}

/** The client: see createPspClient. */
export class PspClient extends EventEmitter<PspClientEvents> {
  /** Resolves once bootstrapped (a verified consensus, and the first preemptive circuit). */
  readonly ready: Promise<void>;
  /** Signed, expiring records in the DHT, reached through a circuit (the node at its end runs the lookups). */
  readonly dht: PspDht;
  /** Presence points: announce to be found and introduced to. */
  readonly presence: PspPresence;
  /** Streams (docs/spec/streaming.md): create one anonymously through a circuit, publish to it, play one from a ticket. */
  readonly streams: PspStreams;
  /** Stream-creation receipts (linkable or blind) and viewer session ids from oracles, through circuits (stream/oracle-client.ts). */
  readonly oracle: OracleClient;
  private presenceClient: PresenceClient | undefined;
  private onionClient: OnionClientHandle | undefined;
  private dhtSession: { circuit: OnionCircuit; client: CircuitDhtClient } | undefined;
  private dhtOpening: Promise<{ circuit: OnionCircuit; client: CircuitDhtClient }> | undefined;
  private held: CertificateInfo | undefined;
  private certifying: Promise<CertificateInfo> | undefined;
  private closed = false;
  private readonly log: Logger;

  /** @internal use createPspClient */
  constructor(
    private readonly options: PspClientOptions,
    private readonly bootstrap: ResolvedBootstrap,
    private readonly identityKey: LoadedIdentity | undefined,
    private readonly manager: ConnectionManager,
    private readonly rpc: LinkRpc,
    private readonly consensusClient: ConsensusClient,
  ) {
    super();
    this.log = childLogger(options.logger, "client");
    this.dht = { get: (key) => this.dhtGet(key), put: (record) => this.dhtPut(record) };
    this.presence = {
      announce: async (o) => await (await this.presenceOf("presence.announce()")).announce(o),
      withdraw: () => this.presenceClient?.withdraw(),
      status: () => this.presenceClient?.status() ?? [],
    };
    this.streams = createPspStreams({
      // Players report what they received under their session's viewer key (rewards/report.ts), through a circuit to an oracle.
      viewer: {
        session: () => this.oracle.session(),
        report: async (session, window) => {
          const report = signUsageReport({ kind: "viewer", secretKey: session.secretKey, session: session.session, ...window });
          try {
            await this.oracle.report(report.bytes);
          } catch (err) {
            // A final refusal (an expired session, a closed epoch) is not retried: no oracle would take it later.
            if (!isFinalReportRefusal(err)) throw err;
            this.warn(err, "report what a player received");
          }
        },
        epochClock: () => this.oracle.epochClock(),
        ...(this.options.reportIntervalSeconds === undefined ? {} : { reportIntervalSeconds: this.options.reportIntervalSeconds }),
      },
      circuitTo: async (node) => await (await this.onion()).buildCircuit({ lastHop: node }),
      nodes: () => {
        const held = this.consensusClient.current();
        return held ? consensusToPathNodes(held) : [];
      },
      ...this.withLogger(),
    });
    this.oracle = createOracleClient({
      consensus: () => this.consensus,
      openStream: (service, lastHop) => this.openStream(service, { lastHop }),
      certificate: async () => (await this.certificate()).bytes,
      identitySecretKey: () => this.requireIdentity("oracle.receipt()").secretKey,
    });
    this.ready = this.boot();
    // `ready` may be left unawaited: its failure also reaches "warning" listeners and the log, never an unhandled rejection.
    this.ready.catch((err: Error) => this.warn(err, "bootstrap"));
  }

  /** The identity string this client acts as (undefined without an identity). */
  get identity(): string | undefined {
    return this.identityKey?.text;
  }

  /** The verified consensus held now (undefined before bootstrap or after it expired). */
  get consensus(): VerifiedConsensus | undefined {
    return this.consensusClient.current();
  }

  /** An open circuit for the caller to use and close: from the ready pool, or one built to `lastHop`. */
  async circuit(options: CircuitOptions = {}): Promise<OnionCircuit> {
    const onion = await this.onion();
    if (options.lastHop === undefined) return await onion.getCircuit();
    return await onion.buildCircuit({ lastHop: this.consensusNode(options.lastHop) });
  }

  /** Opens a stream to `service` on the last hop of a circuit of its own; closing the stream closes that circuit. */
  async openStream(service: string, options: CircuitOptions = {}): Promise<OnionStream> {
    if (typeof service !== "string" || service.length === 0) throw new ClientError("bad-option", 'openStream needs a service name, e.g. "echo"');
    const circuit = await this.circuit(options);
    try {
      const stream = await circuit.openStream(service);
      void stream.closed.then(() => circuit.close());
      return stream;
    } catch (err) {
      circuit.close();
      throw err;
    }
  }

  /**
   * An access certificate for the client's identity from a threshold of the
   * authorities the consensus lists, each asked through a circuit ending at
   * it. A held one is reused until 5 minutes before it expires, while it
   * still verifies against the held consensus as peers check it: once the
   * consensus lists more authorities (a young network) or others, a
   * certificate with fewer endorsements than they need is replaced.
   */
  async certificate(): Promise<CertificateInfo> {
    await this.ready;
    this.assertOpen();
    if (this.held && this.held.notAfter - Date.now() / 1000 > CERT_RENEW_MARGIN_S && this.stillAccepted(this.held)) return this.held;
    this.certifying ??= this.requestCertificate().finally(() => (this.certifying = undefined));
    return await this.certifying;
  }

  /**
   * The presence points of `identity`, freshest first, looked up through a
   * circuit. Rejects with PresenceError "not-found" when it is not announced.
   */
  async lookup(identity: string): Promise<FoundPoint[]> {
    return await (await this.presenceOf()).lookup(identity);
  }

  /**
   * Opens an end-to-end encrypted channel to `identity` through presence,
   * introduction and rendezvous; the peer's app must accept. Rejects with
   * PresenceError "refused", "not-found", "unreachable" or "timeout".
   */
  async connect(identity: string, options?: ConnectOptions): Promise<PresenceChannel> {
    const presence = await this.presenceOf("connect()");
    const channel = await presence.connect(identity, options);
    this.emit("channel", channel);
    return channel;
  }

  /** An application's commercial nodes and services: `client.app("acme", "shop").connect("kv")`. */
  app(namespace: string, application: string): PspApp {
    let id: `0x${string}`;
    try {
      id = applicationId(namespace, application);
    } catch (err) {
      throw new ClientError("bad-option", `app(namespace, application): ${(err as Error).message}`, { cause: err });
    }
    const appId = Uint8Array.from(Buffer.from(id.slice(2), "hex"));
    const name = `${namespace}.${application}`;
    const listed = () => {
      const consensus = this.consensusClient.current();
      return consensus ? applicationNodes(consensus, appId) : [];
    };
    return {
      name,
      appId: id,
      nodes: () => listed().map((n) => hexOf(n.identity)),
      connect: async (service, options = {}) => {
        const onion = await this.onion();
        const nodes = listed();
        const wanted = options.node?.replace(/^0x/, "").toLowerCase();
        const node = wanted ? nodes.find((n) => hexOf(n.identity) === wanted) : chooseApplicationNode(nodes, name);
        if (!node) throw new CommercialError("no-nodes", `node ${wanted?.slice(0, 16)}… is not a commercial node of ${name} in the held consensus`);
        const attempt = async (withIdentity: boolean): Promise<CommercialConnection> => {
          const identity = withIdentity
            ? { secretKey: this.requireIdentity(`app(${name}).connect with identity`).secretKey, certificate: (await this.certificate()).bytes }
            : undefined;
          let circuit: OnionCircuit;
          try {
            circuit = await (options.direct ? onion.buildCircuit({ path: [node] }) : onion.buildCircuit({ lastHop: node }));
          } catch (err) {
            throw new CommercialError("unreachable", `no circuit to ${name}'s node ${hexOf(node.identity).slice(0, 16)}…: ${(err as Error).message}`, { cause: err });
          }
          try {
            const stream = await circuit.openStream(COMMERCIAL_SERVICE);
            void stream.closed.then(() => circuit.close());
            return await openCommercial(stream, {
              appId,
              service,
              node: node.identity,
              ...(identity ? { identity } : {}),
              ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
            });
          } catch (err) {
            circuit.close();
            throw commercialErrorOf(err);
          }
        };
        try {
          return await attempt(options.identity === true);
        } catch (err) {
          // A service that requires an identity asks for one: present it when the client has one and the app did not say no.
          if (options.identity === undefined && this.identityKey && err instanceof CommercialError && err.kind === "needs-identity") return await attempt(true);
          throw err;
        }
      },
    };
  }

  /** Ends every circuit and link and stops refreshing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.presenceClient?.close();
    this.consensusClient.stop();
    this.dhtSession?.client.close();
    await this.onionClient?.close();
    this.rpc.close();
    await this.manager.close();
  }

  // ------------------------------------------------------------ bootstrap

  private async boot(): Promise<void> {
    const timeoutMs = this.options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.consensusClient.on("consensus", (c) => {
      this.onionClient?.setNodes(consensusToPathNodes(c));
      this.emit("consensus", consensusSummary(c));
    });
    this.consensusClient.on("fetch-error", (peer, err) =>
      this.warn(
        new ClientError("no-consensus", `consensus fetch from ${hexOf(peer.identity).slice(0, 16)}… at ${peer.host}:${peer.port} failed: ${err.message}`, {
          cause: err,
        }),
        "fetch consensus",
      ),
    );
    const held = new Promise<VerifiedConsensus>((resolve) => {
      const now = this.consensusClient.current();
      if (now) return resolve(now);
      this.consensusClient.once("consensus", resolve);
    });
    void this.consensusClient.start().then(
      (loaded) => {
        if (!loaded.loaded && this.bootstrap.consensusFile !== undefined)
          this.warn(new ClientError("bad-bootstrap", `consensus file not used: ${loaded.message}`), "load consensus file");
      },
      (err: unknown) => this.warn(err, "start consensus client"),
    );
    const consensus = await withTimeout(
      held,
      timeoutMs,
      () =>
        new ClientError(
          "no-consensus",
          `no verified consensus from ${this.bootstrap.sources.length} bootstrap nodes within ${timeoutMs} ms: is the network up, and are the discovery keys its own?`,
        ),
    );
    this.assertOpen();
    const preemptive = this.options.preemptiveCircuits ?? DEFAULT_PREEMPTIVE;
    const onion = await createOnionClient({
      nodes: consensusToPathNodes(consensus),
      manager: this.manager,
      preemptiveCircuits: preemptive,
      ...this.withLogger(),
    });
    this.onionClient = onion;
    onion.circuits.on("ready", (c) => this.emit("circuit", { type: "ready", circuitId: c.id, path: c.path.map((n) => hexOf(n.identity)) }));
    onion.circuits.on("lost", (c, err) => this.emit("circuit", { type: "lost", circuitId: c.id, ...(err ? { error: err.message } : {}) }));
    onion.circuits.on("build-failed", (err) => {
      this.emit("circuit", { type: "build-failed", error: err.message });
      this.warn(err, "build circuit");
    });
    if (preemptive > 0 && onion.circuits.readyCount === 0) {
      await withTimeout(
        new Promise<void>((resolve) => onion.circuits.once("ready", () => resolve())),
        timeoutMs,
        () => new ClientError("no-circuit", `no circuit could be built within ${timeoutMs} ms through the ${consensus.entries.length} nodes of the consensus`),
      );
    }
  }

  private async onion(): Promise<OnionClientHandle> {
    await this.ready;
    this.assertOpen();
    return this.onionClient!;
  }

  private consensusNode(identity: string | Uint8Array): PathNode {
    const hex = typeof identity === "string" ? identity.replace(/^0x/, "").toLowerCase() : hexOf(identity);
    const consensus = this.consensusClient.current();
    const node = consensus ? consensusToPathNodes(consensus).find((n) => hexOf(n.identity) === hex) : undefined;
    if (!node) throw new ClientError("bad-option", `node ${hex.slice(0, 16)}… is not an onion relay of the current consensus`);
    return node;
  }

  /** Reports a background failure: logged (and counted) under `operation`, and emitted as "warning". */
  private warn(err: unknown, operation: string): void {
    logFailure(this.log, err, operation, "warn");
    if (this.listenerCount("warning") > 0) this.emit("warning", err instanceof Error ? err : new Error(String(err)));
  }

  /** The client's own logger for the layers it starts ({} without one). */
  private withLogger(): { logger?: Logger } {
    return this.options.logger ? { logger: this.options.logger } : {};
  }

  private assertOpen(): void {
    if (this.closed) throw new ClientError("closed", "the client was closed");
  }

  private requireIdentity(what: string): LoadedIdentity {
    if (!this.identityKey)
      throw new ClientError("no-identity", `${what} needs the client's identity: pass identity: { keyFile, passphrase } (or { secretKey }) to createPspClient`);
    return this.identityKey;
  }

  // ------------------------------------------------------------ presence

  /** The presence client, made on first use; `needsIdentity` names the operation that needs the user's identity. */
  private async presenceOf(needsIdentity?: string): Promise<PresenceClient> {
    const onion = await this.onion();
    if (needsIdentity) this.requireIdentity(needsIdentity);
    if (this.presenceClient) return this.presenceClient;
    const identity = this.identityKey;
    const chain = this.options.chain ?? this.bootstrap.chain;
    const client = new PresenceClient({
      identity: identity
        ? { text: identity.text, secretKey: identity.secretKey, publicKey: ed25519PublicKey(identity.secretKey) }
        : { text: "", secretKey: new Uint8Array(32), publicKey: new Uint8Array(32) },
      certificate: async () => {
        const cert = await this.certificate();
        return { bytes: cert.bytes, notAfter: cert.notAfter };
      },
      dhtGetAll: (key) => this.withDht((dht) => dht.getAll(key)),
      buildCircuit: (o) => (o.path ? onion.buildCircuit({ path: o.path }) : onion.buildCircuit({ ...(o.lastHop ? { lastHop: o.lastHop } : {}) })),
      nodes: () => {
        const consensus = this.consensusClient.current();
        return consensus ? consensusToPathNodes(consensus) : [];
      },
      verifyCertificate: (cert) =>
        verifyAccessCertificateWithConsensus(cert, this.consensusClient.current(), {
          now: Date.now(),
          ...(chain ? { chainId: chain.chainId, registry: chain.registry } : {}),
        }),
      ...(this.options.presencePeriodMinutes === undefined ? {} : { periodLength: this.options.presencePeriodMinutes }),
      ...this.withLogger(),
    });
    client.on("introduction", (intro) => {
      if (this.listenerCount("introduction") > 0) this.emit("introduction", intro);
      else intro.refuse();
    });
    client.on("channel", (channel) => this.emit("channel", channel));
    client.on("point", (point) => this.emit("presence", point));
    client.on("cap-reached", (cap) => this.emit("cap-reached", cap));
    // Already a debug line of the presence client: a peer's bad introduction is not the app's warning to log.
    client.on("bad-introduction", (err) => {
      if (this.listenerCount("warning") > 0) this.emit("warning", err);
    });
    client.on("warning", (err) => this.warn(err, "presence"));
    this.presenceClient = client;
    return client;
  }

  // ------------------------------------------------------------ certificates

  /** Whether peers holding our consensus would accept `held` (no consensus held: nothing to say otherwise). */
  private stillAccepted(held: CertificateInfo): boolean {
    const consensus = this.consensusClient.current();
    if (!consensus) return true;
    const chain = this.options.chain ?? this.bootstrap.chain;
    try {
      verifyAccessCertificateWithConsensus(held.bytes, consensus, { now: Date.now(), ...(chain ? { chainId: chain.chainId, registry: chain.registry } : {}) });
      return true;
    } catch (err) {
      this.log.info({ err }, "the held access certificate no longer verifies against the consensus: asking the authorities again");
      return false;
    }
  }

  private async requestCertificate(): Promise<CertificateInfo> {
    const identity = this.requireIdentity("certificate()");
    const chain = this.options.chain ?? this.bootstrap.chain;
    if (!chain)
      throw new ClientError("bad-option", "certificate() needs the PKI deployment: pass chain: { chainId, registry } (a devnet bootstrap names its own)");
    const consensus = this.consensusClient.current();
    const authorities = consensus ? consensusToPathNodes(consensus, { requireFlags: ["onion", "authority"] }) : [];
    const listed = consensus?.entries.filter((e) => (e.flags & NodeFlag.authority) !== 0).length ?? 0;
    const threshold = defaultCertificateThreshold(listed);
    if (authorities.length < threshold) {
      throw new ClientError(
        "no-authorities",
        `the consensus lists ${authorities.length} authorities this client can reach through circuits, ${threshold} are needed`,
      );
    }
    const onion = await this.onion();
    const circuits = await Promise.allSettled(authorities.map((a) => onion.buildCircuit({ lastHop: a })));
    const open = circuits.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    for (const r of circuits) if (r.status === "rejected") this.warn(r.reason, "build circuit to an authority");
    try {
      const transports = [];
      for (const circuit of open) {
        try {
          transports.push(circuitAuthorityTransport(await circuit.openStream("authority")));
        } catch (err) {
          this.warn(err, "open authority stream");
        }
      }
      if (transports.length < threshold)
        throw new ClientError(
          "no-authorities",
          `${transports.length} of ${authorities.length} authorities could be reached through circuits, ${threshold} are needed`,
        );
      const issued = await requestAccessCertificateWhenConfirmed({
        transports,
        identity: identity.text,
        identitySecretKey: identity.secretKey,
        chainId: chain.chainId,
        registry: chain.registry,
        authorities: authorities.map((a) => a.identity),
        threshold,
      });
      for (const refusal of issued.refusals)
        this.warn(new ClientError("no-authorities", `an authority refused: [${refusal.qualifiedKind}] ${refusal.message}`), "get certificate");
      const v = issued.verified;
      this.held = {
        bytes: issued.certificate,
        identity: v.identity,
        identityId: v.identityId,
        notBefore: v.notBefore,
        notAfter: v.notAfter,
        authorities: v.authorities.length,
      };
      this.emit("certificate", this.held);
      return this.held;
    } finally {
      for (const circuit of open) circuit.close();
    }
  }

  // ------------------------------------------------------------ DHT

  private async dhtClient(): Promise<CircuitDhtClient> {
    if (this.dhtSession?.circuit.isOpen) return this.dhtSession.client;
    this.dhtOpening ??= (async () => {
      const circuit = await (await this.onion()).getCircuit();
      try {
        const client = createCircuitDhtClient(await circuit.openStream("dht"), {
          ...(this.options.dhtTimeoutMs ? { timeoutMs: this.options.dhtTimeoutMs } : {}),
          ...this.withLogger(),
        });
        const session = { circuit, client };
        void circuit.closed.then(() => {
          if (this.dhtSession === session) this.dhtSession = undefined;
        });
        this.dhtSession = session;
        return session;
      } catch (err) {
        circuit.close();
        throw err;
      }
    })().finally(() => (this.dhtOpening = undefined));
    return (await this.dhtOpening).client;
  }

  /** Runs `op` on the DHT session; a session lost underneath (circuit gone) is replaced once. */
  private async withDht<T>(op: (client: CircuitDhtClient) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.dhtClient();
      try {
        return await op(client);
      } catch (err) {
        const lost = DhtError.is(err, "unreachable") || !this.dhtSession?.circuit.isOpen;
        if (!lost || attempt > 0) throw err;
        this.warn(
          new ClientError("no-circuit", `the DHT circuit was lost (${(err as Error).message}); retrying on a new one`, { cause: err }),
          "use DHT session",
        );
        this.dhtSession?.circuit.close();
        this.dhtSession = undefined;
      }
    }
  }

  private async dhtGet(key: DhtKey): Promise<DhtRecord | undefined> {
    let bytes: Uint8Array;
    if (key instanceof Uint8Array) bytes = key;
    else if (typeof key === "object" && key !== null && typeof key.name === "string") {
      const owner = typeof key.owner === "string" ? parseIdentity(key.owner).publicKey : key.owner;
      bytes = recordKey(owner, key.name);
    } else throw new DhtError("malformed", "dht.get needs a 32-byte key or { owner, name }");
    return await this.withDht((client) => client.get(bytes));
  }

  private async dhtPut(input: DhtPutInput | OwnerSignedRecord): Promise<CircuitDhtPutResult> {
    let record: OwnerSignedRecord;
    if ("ownerSig" in input) record = input;
    else {
      const identity = this.requireIdentity("dht.put of an unsigned record");
      const ttlMs = input.ttlMs ?? DEFAULT_TTL_MS;
      record = signRecordAsOwner({
        ownerSecretKey: identity.secretKey,
        name: input.name,
        value: input.value,
        seq: input.seq ?? Date.now(),
        expiresAt: Date.now() + ttlMs,
      });
    }
    return await this.withDht((client) => client.put(record));
  }
}

/**
 * Creates a client and starts bootstrapping it (await `client.ready`).
 * Throws ClientError "bad-option" / "bad-bootstrap" for options or files it
 * cannot use, and the crypto layer's error for a wrong key-file passphrase.
 */
export async function createPspClient(options: PspClientOptions): Promise<PspClient> {
  if (typeof options !== "object" || options === null)
    throw new ClientError("bad-option", "createPspClient needs an options object: { bootstrap, identity?, ... }");
  const preemptive = options.preemptiveCircuits;
  if (preemptive !== undefined && (!Number.isInteger(preemptive) || preemptive < 0 || preemptive > 16))
    throw new ClientError("bad-option", "preemptiveCircuits must be an integer in 0..16");
  for (const k of ["readyTimeoutMs", "dhtTimeoutMs", "presencePeriodMinutes"] as const) {
    const v = options[k];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new ClientError("bad-option", `${k} must be a positive integer (ms)`);
  }
  const bootstrap = await resolveBootstrap(options.bootstrap);
  const identity = await loadIdentity(options.identity);
  const logger = options.logger ? { logger: options.logger } : {};
  const manager = await createConnectionManager({ ...logger });
  const rpc = createLinkRpc({ manager, ...logger });
  const consensusClient = new ConsensusClient({
    rpc,
    ...logger,
    trust: bootstrap.trust,
    sources: bootstrap.sources,
    ...(bootstrap.consensusFile === undefined ? {} : { file: bootstrap.consensusFile }),
    // Bootstrapping waits on this: retry a failed refresh soon, but not in a tight loop.
    retryMs: 5_000,
  });
  return new PspClient(options, bootstrap, identity, manager, rpc, consensusClient);
}
