/**
 * A DHT node: answers the four RPCs, keeps its routing table from signed
 * messages only, and runs lookups, value lookups and publishes over any
 * DhtTransport. The simulator runs this same class over its in-memory
 * transport.
 *
 * Every incoming message (request or response) is checked in this order:
 * shape, sender puzzles, clock skew, signature, and only then the nonce
 * (ReplayGuard, bounded per sender): a forged message never takes room in
 * the replay cache. Responses must also come from the contact asked and
 * echo the request nonce. Only then does the sender enter the routing table (S/Kademlia
 * §4.2). Contacts listed inside replies are used by the lookup after a
 * puzzle check but enter the table only once they answer us themselves.
 *
 * STOREs are charged to the node that sent them and its source address
 * (SenderQuota) besides the store's per-owner quota: owner keys are free.
 * A failure caused by this node's own limits (its replay cache, its request
 * slots: isLocalRefusal) is never counted against the contact, and a lookup
 * that found nothing because of one reports it instead of "not found".
 *
 * Trusts: its transport to deliver bytes somewhere (nothing more), its store
 * to keep what it put, and its clock.
 */
import { withTimeout } from "../base/timeout.js";
import { randomBytes } from "../crypto/backend.js";
import { nodeIdFromPublicKey } from "../crypto/puzzles.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { DhtError } from "./errors.js";
import type { DhtErrorKind } from "./errors.js";
import { isLocalRefusal } from "./link-transport.js";
import { SenderQuota } from "./sender-quota.js";
import { resolveDhtConfig } from "./config.js";
import type { DhtConfig } from "./config.js";
import { ContactVerifier, contactHex } from "./contact.js";
import type { Contact } from "./contact.js";
import { compareDistance, idHex, idsEqual, isId } from "./id.js";
import type { NodeId } from "./id.js";
import { disjointLookup } from "./lookup.js";
import type { LookupResult, ReachedNode } from "./lookup.js";
import {
  DHT_PROTOCOL_VERSION,
  MAX_CONTACTS_PER_RESPONSE,
  NONCE_BYTES,
  ReplayGuard,
  checkMessageShape,
  ed25519Authenticator,
  isRequestBody,
  signingPayload,
} from "./messages.js";
import { RoutingTable } from "./routing-table.js";
import type {
  DhtMessage,
  DhtRequest,
  DhtRequestBody,
  DhtRequestContext,
  DhtResponse,
  DhtResponseBody,
  DhtTransport,
  MessageAuthenticator,
} from "./messages.js";
import { validateRecord } from "./record.js";
import type { DhtRecord } from "./record.js";
import type { PutOutcome, RecordStore } from "./store.js";

export interface DhtNodeIdentity {
  /** Ed25519 secret key (32-byte seed) of the node; signs its messages. */
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  /** Dynamic puzzle solution for SHA-256(publicKey). */
  puzzleX: Uint8Array;
  /** Transport address others use to reach this node. */
  address: string;
}

export interface DhtNodeOptions {
  identity: DhtNodeIdentity;
  transport: DhtTransport;
  store: RecordStore;
  config?: Partial<DhtConfig>;
  /** Clock, ms since the Unix epoch (default Date.now). */
  now?: () => number;
  /** Nonce source (default crypto random); the simulator passes a seeded one. */
  random?: (length: number) => Uint8Array;
  /** Message signing (default Ed25519 with identity.secretKey). */
  auth?: MessageAuthenticator;
  /**
   * Re-check the shape of every incoming message object (default true).
   * Byte transports decode with decodeDhtMessage, which already does; the
   * simulator turns it off because it hands over objects built by DhtNode.
   */
  checkShapes?: boolean;
  /** Offer requesters to the routing table (default true; the static simulator turns it off). */
  learnFromRequests?: boolean;
  /** Shares one puzzle-check cache between nodes (the simulator's 10^4 nodes); default one per node. */
  contactVerifier?: ContactVerifier;
  /** Extra rule on record publishers (see validateRecord). */
  acceptPublisher?: (publisher: Uint8Array) => boolean;
  /** Logs as component "dht": refused requests and bad referrals at debug (counted), failed maintenance at warn; silent when absent. */
  logger?: Logger;
}

/** Per-lookup overrides of the node's configured d, alpha, message cap, window w and first-reply breadth b. */
export type LookupOverrides = Partial<Pick<DhtConfig, "disjointPaths" | "alpha" | "maxMessagesPerLookup" | "lookupWindow" | "firstReplyBreadth">>;

export interface FindValueResult {
  /** The valid record with the highest sequence number found, if any. */
  record?: DhtRecord;
  lookup: LookupResult<DhtRecord>;
}

export interface PublishResult {
  /** Nodes that confirmed the record (STORED), plus "self" when kept locally. */
  stored: Contact[];
  storedLocally: boolean;
  /** Nodes that refused or failed, with the reason. */
  failed: Array<{ contact: Contact; error: DhtError }>;
  lookup: LookupResult<never>;
}

/** Counters of what this node refused and of its own limits met, for metrics. */
export interface DhtNodeStats {
  /** Incoming requests answered with an ERROR, by kind ("quota-exceeded", "overloaded", "bad-message-signature", ...). */
  refused: Partial<Record<DhtErrorKind, number>>;
  /** Our own requests that failed on this node's limits (not counted against the contact). */
  localRefusals: number;
}

/** Refusals that mean one of this node's caps was met: logged (throttled) at info, so an operator sees which cap. */
const CAP_KINDS: ReadonlySet<DhtErrorKind> = new Set(["busy", "overloaded", "quota-exceeded", "store-full"]);

function asDhtError(err: unknown): DhtError {
  if (err instanceof DhtError) return err;
  return new DhtError("malformed", `unexpected failure: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

export class DhtNode {
  readonly config: DhtConfig;
  readonly contact: Contact;
  readonly table: RoutingTable;
  readonly store: RecordStore;
  private readonly transport: DhtTransport;
  private readonly verifier: ContactVerifier;
  private readonly replay: ReplayGuard;
  private readonly auth: MessageAuthenticator;
  private readonly now: () => number;
  private readonly random: (length: number) => Uint8Array;
  private readonly checkShapes: boolean;
  private readonly learnFromRequests: boolean;
  private readonly acceptPublisher: ((publisher: Uint8Array) => boolean) | undefined;
  private readonly background = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly logRefusal: ReturnType<typeof throttledFailureLog>;
  private readonly senderQuota: SenderQuota;
  readonly stats: DhtNodeStats = { refused: {}, localRefusals: 0 };

  constructor(options: DhtNodeOptions) {
    this.config = resolveDhtConfig(options.config);
    const { identity } = options;
    this.contact = {
      nodeId: nodeIdFromPublicKey(identity.publicKey),
      publicKey: identity.publicKey,
      puzzleX: identity.puzzleX,
      address: identity.address,
    };
    this.verifier = options.contactVerifier ?? new ContactVerifier(this.config);
    // Our own id must pass the checks every peer will apply to it.
    this.verifier.verify(this.contact);
    this.table = new RoutingTable(this.contact.nodeId, this.config);
    this.store = options.store;
    this.transport = options.transport;
    this.replay = new ReplayGuard(this.config.maxClockSkewMs, this.config.replay);
    this.senderQuota = new SenderQuota(this.config.senderQuota);
    this.auth = options.auth ?? ed25519Authenticator(identity.secretKey);
    this.now = options.now ?? Date.now;
    // What peers stored here before a restart still counts against them.
    for (const held of this.store.charges(this.now())) this.senderQuota.charge(idHex(held.key), held.size, held.expiresAt, held.sender, held.address);
    this.random = options.random ?? randomBytes;
    this.checkShapes = options.checkShapes ?? true;
    this.learnFromRequests = options.learnFromRequests ?? true;
    this.acceptPublisher = options.acceptPublisher;
    this.log = childLogger(options.logger, "dht");
    this.logRefusal = throttledFailureLog(this.log);
  }

  get nodeId(): NodeId {
    return this.contact.nodeId;
  }

  // ---------------------------------------------------------------- server side

  /**
   * Answers one request. Never throws: every failure becomes an ERROR
   * response with a DhtError kind, counted in `stats.refused` and logged
   * (throttled). `context.address` is the request's source host, when the
   * transport knows it (per-address storage quota).
   */
  async handleRequest(incoming: DhtRequest, context: DhtRequestContext = {}): Promise<DhtResponse> {
    let request: DhtRequest;
    try {
      const accepted = this.acceptMessage(incoming);
      if (!isRequestBody(accepted.body)) throw new DhtError("malformed", `${accepted.body.type} is a response, not a request`);
      request = accepted as DhtRequest;
    } catch (err) {
      return this.refuse(incoming, err, "accept DHT request");
    }
    if (this.learnFromRequests) this.observe(request.sender);
    try {
      return this.respond(request, this.answer(request.body, request.sender, context));
    } catch (err) {
      return this.refuse(request, err, `answer ${request.body.type}`);
    }
  }

  /** The ERROR answer to a refused request, counted by kind; a met cap is logged at info, anything else at debug (both throttled). */
  private refuse(request: DhtRequest, err: unknown, operation: string): DhtResponse {
    const e = asDhtError(err);
    this.stats.refused[e.kind] = (this.stats.refused[e.kind] ?? 0) + 1;
    this.logRefusal(e, operation, CAP_KINDS.has(e.kind) ? "info" : "debug");
    return this.respond(request, { type: "ERROR", kind: e.kind, message: e.message.slice(0, 512) });
  }

  private answer(body: DhtRequestBody, sender: Contact, context: DhtRequestContext): DhtResponseBody {
    const k = this.config.bucketSize;
    switch (body.type) {
      case "PING":
        return { type: "PONG" };
      case "FIND_NODE":
        return { type: "NODES", contacts: this.closestExcept(body.target, k, sender) };
      case "FIND_VALUE": {
        const now = this.now();
        const record = this.store.get(body.key, now);
        const contacts = this.closestExcept(body.key, k, sender);
        return record === undefined ? { type: "NODES", contacts } : { type: "VALUE", record, contacts };
      }
      case "STORE": {
        const now = this.now();
        // Cheap table check before the two signature checks: a node far from the key never pays for them.
        if (isId(body.record?.key) && !this.isResponsibleFor(body.record.key)) {
          throw new DhtError(
            "not-responsible",
            `this node knows ${this.config.storeWindow} or more nodes closer to the key; store on the k closest nodes a lookup finds`,
          );
        }
        const size = validateRecord(body.record, { now, limits: this.config.records, acceptPublisher: this.acceptPublisher });
        return { type: "STORED", outcome: this.storeFrom(body.record, size, sender, context.address, now) };
      }
    }
  }

  /** Puts a record a peer sent, charged to that peer and its address (refused "quota-exceeded" past their share). */
  private storeFrom(record: DhtRecord, size: number, sender: Contact, address: string | undefined, now: number): PutOutcome {
    const keyHex = idHex(record.key);
    const senderHex = idHex(sender.nodeId);
    this.senderQuota.check(keyHex, size, senderHex, address, now);
    const outcome = this.store.put(record, size, now, { sender: senderHex, ...(address === undefined ? {} : { address }) });
    if (outcome === "stored") this.senderQuota.charge(keyHex, size, record.expiresAt, senderHex, address);
    return outcome;
  }

  /** Live records and bytes this node holds on behalf of one sending node (diagnostics, tests). */
  senderUsage(senderId: NodeId): { records: number; bytes: number } {
    return this.senderQuota.usage(idHex(senderId), this.now());
  }

  /**
   * True when this node is plausibly among the k closest to `key` by its own
   * table: fewer than `storeWindow` known contacts are closer than itself.
   */
  isResponsibleFor(key: NodeId): boolean {
    const window = this.config.storeWindow;
    const closer = this.table.closest(key, window);
    const last = closer[window - 1];
    return closer.length < window || last === undefined || compareDistance(this.nodeId, last.nodeId, key) < 0;
  }

  private closestExcept(target: NodeId, count: number, except: Contact): Contact[] {
    return this.table
      .closest(target, Math.min(count, MAX_CONTACTS_PER_RESPONSE) + 1)
      .filter((c) => !idsEqual(c.nodeId, except.nodeId))
      .slice(0, Math.min(count, MAX_CONTACTS_PER_RESPONSE));
  }

  /**
   * A signed response with an arbitrary body: lets simulators and tests
   * model a misbehaving node that still owns its key.
   */
  respondWith(request: DhtRequest, body: DhtResponseBody): DhtResponse {
    return this.respond(request, body);
  }

  private respond(request: DhtRequest, body: DhtResponseBody): DhtResponse {
    const inReplyTo = request?.nonce instanceof Uint8Array && request.nonce.length === NONCE_BYTES ? request.nonce : new Uint8Array(NONCE_BYTES);
    return this.seal({ body, inReplyTo });
  }

  /** Builds and signs a message from this node. */
  private seal<B extends DhtRequestBody | DhtResponseBody>(parts: { body: B; inReplyTo?: Uint8Array }): DhtMessage<B> {
    const msg: DhtMessage<B> = {
      version: DHT_PROTOCOL_VERSION,
      sender: this.contact,
      nonce: this.random(NONCE_BYTES),
      timestamp: this.now(),
      body: parts.body,
      signature: new Uint8Array(0),
    };
    if (parts.inReplyTo !== undefined) msg.inReplyTo = parts.inReplyTo;
    msg.signature = this.auth.sign(() => signingPayload(msg));
    return msg;
  }

  /** Shape, puzzles, clock, signature, then the nonce (only signed messages take room in the replay cache). Returns the message; throws DhtError. */
  private acceptMessage(incoming: DhtMessage<DhtRequestBody | DhtResponseBody>): DhtMessage<DhtRequestBody | DhtResponseBody> {
    const msg = this.checkShapes ? checkMessageShape(incoming) : incoming;
    this.verifier.verify(msg.sender);
    const now = this.now();
    this.replay.checkClock(msg.timestamp, now);
    if (!this.auth.verify(msg.sender.publicKey, () => signingPayload(msg), msg.signature)) {
      throw new DhtError("bad-message-signature", "message signature does not verify under the sender's key");
    }
    this.replay.check(msg.sender.nodeId, msg.nonce, msg.timestamp, now);
    return msg;
  }

  // ---------------------------------------------------------------- routing table upkeep

  /**
   * Offers a contact that signed a verified message. A full bucket pings its
   * oldest contact in the background and replaces it only if it is dead.
   */
  private observe(contact: Contact): void {
    const outcome = this.table.offer(contact);
    if (outcome.kind !== "ping-oldest") return;
    const oldest = outcome.oldest;
    this.track(
      this.probe(oldest).then((state) => {
        // Our own limits answering for the contact say nothing of it: keep the old one (S/Kademlia prefers it anyway).
        this.table.resolvePing(oldest.nodeId, state !== "dead");
      }),
      "ping the oldest contact of a full bucket",
    );
  }

  /** Runs a background task nobody awaits (settled() waits for them): its failure is logged and counted under `operation`. */
  private track(task: Promise<void>, operation: string): void {
    const guarded = task.catch((err: unknown) => logFailure(this.log, err, operation)).finally(() => this.background.delete(guarded));
    this.background.add(guarded);
  }

  /** Resolves when every background task (pings before replacement) has finished. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }

  /**
   * Adds contacts without a message exchange, after the puzzle check. Only
   * for seeding from a signed source (the consensus) or the simulator's
   * global-view bootstrap; returns how many entered.
   */
  seedContacts(contacts: readonly Contact[]): number {
    let added = 0;
    for (const c of contacts) {
      try {
        const outcome = this.table.offer(this.verifier.verify(c));
        if (outcome.kind === "added") added++;
        else if (outcome.kind === "ping-oldest") this.table.resolvePing(outcome.oldest.nodeId, true);
      } catch (err) {
        // A contact failing its puzzle is skipped; the seed list may be stale or hostile.
        logFailure(this.log, err, "seed contact", "debug");
      }
    }
    return added;
  }

  // ---------------------------------------------------------------- client side

  /** Sends one request and returns the verified response body. Throws DhtError. */
  async rpc(contact: Contact, body: DhtRequestBody, options: { countFailure?: boolean } = {}): Promise<DhtResponseBody> {
    const request = this.seal({ body });
    let response: DhtResponse;
    try {
      const timeoutMs = this.config.rpcTimeoutMs;
      response = await withTimeout(
        this.transport.request(contact, request, { timeoutMs }),
        timeoutMs,
        () => new DhtError("timeout", `no response within ${timeoutMs} ms`),
      );
    } catch (err) {
      const e = asDhtError(err);
      // A refusal by our own limits (request slots, replay cache) is no fault of the contact.
      if (isLocalRefusal(e)) this.stats.localRefusals++;
      else if (options.countFailure !== false) this.table.recordFailure(contact.nodeId);
      throw e;
    }
    let verified: DhtMessage<DhtRequestBody | DhtResponseBody>;
    try {
      verified = this.acceptMessage(response);
    } catch (err) {
      if (isLocalRefusal(err)) this.stats.localRefusals++;
      throw err;
    }
    if (!idsEqual(verified.sender.nodeId, contact.nodeId)) {
      throw new DhtError("unexpected-response", "response came from a different node than the one asked");
    }
    if (verified.inReplyTo === undefined || !idsEqual(verified.inReplyTo, request.nonce)) {
      throw new DhtError("unexpected-response", "response does not echo the request nonce");
    }
    if (isRequestBody(verified.body)) throw new DhtError("unexpected-response", `got a ${verified.body.type} request as a response`);
    this.observe(verified.sender);
    return verified.body;
  }

  /** True when the contact answers a PING. */
  async ping(contact: Contact, options: { countFailure?: boolean } = {}): Promise<boolean> {
    return (await this.probe(contact, options)) === "alive";
  }

  /** A PING that tells a dead contact from one our own limits kept us from asking ("unknown"). */
  private async probe(contact: Contact, options: { countFailure?: boolean } = { countFailure: false }): Promise<"alive" | "dead" | "unknown"> {
    try {
      return (await this.rpc(contact, { type: "PING" }, options)).type === "PONG" ? "alive" : "dead";
    } catch (err) {
      return isLocalRefusal(err) ? "unknown" : "dead";
    }
  }

  /**
   * Runs a lookup query, remembering a failure that was this node's own
   * (isLocalRefusal) so the lookup can report it instead of "not found".
   */
  private localAware<T>(seen: { error?: DhtError }, query: (contact: Contact) => Promise<T>): (contact: Contact) => Promise<T> {
    return async (contact) => {
      try {
        return await query(contact);
      } catch (err) {
        if (isLocalRefusal(err)) seen.error ??= asDhtError(err);
        throw err;
      }
    };
  }

  /** Joins: pings the seeds (they enter the table when they answer), then looks up the own id. Returns the table size. */
  async bootstrap(seeds: readonly Contact[]): Promise<number> {
    await Promise.all(seeds.filter((s) => !idsEqual(s.nodeId, this.nodeId)).map((s) => this.ping(s)));
    // Joining fills the table from the answers: converge on k like publish.
    if (this.table.size > 0) await this.lookupNode(this.nodeId, { lookupWindow: this.config.bucketSize });
    return this.table.size;
  }

  private contactsFrom(list: readonly Contact[]): Contact[] {
    const out: Contact[] = [];
    for (const c of list.slice(0, this.config.bucketSize)) {
      try {
        out.push(this.verifier.verify(c));
      } catch (err) {
        // A referral with a bad id is dropped; the rest of the reply is still usable.
        logFailure(this.log, err, "take a referred contact", "debug");
      }
    }
    return out;
  }

  private lookupOptions(target: NodeId, overrides: LookupOverrides = {}) {
    const initial = this.table.closest(target, this.config.bucketSize);
    if (initial.length === 0) throw new DhtError("no-contacts", "routing table is empty; bootstrap from the consensus first");
    return {
      target,
      initial,
      disjointPaths: overrides.disjointPaths ?? this.config.disjointPaths,
      alpha: overrides.alpha ?? this.config.alpha,
      resultSize: this.config.bucketSize,
      maxMessages: overrides.maxMessagesPerLookup ?? this.config.maxMessagesPerLookup,
      localId: this.nodeId,
      window: overrides.lookupWindow ?? this.config.lookupWindow,
      firstReplyBreadth: overrides.firstReplyBreadth ?? this.config.firstReplyBreadth,
    };
  }

  /** Disjoint-path node lookup: the k closest nodes to `target` that answered. */
  async lookupNode(target: NodeId, overrides: LookupOverrides = {}): Promise<LookupResult<never>> {
    const local: { error?: DhtError } = {};
    const lookup = await disjointLookup<never>({
      ...this.lookupOptions(target, overrides),
      query: this.localAware(local, async (contact) => {
        const body = await this.rpc(contact, { type: "FIND_NODE", target });
        if (body.type !== "NODES") throw new DhtError("unexpected-response", `FIND_NODE answered with ${body.type}`);
        return { contacts: this.contactsFrom(body.contacts) };
      }),
    });
    // Nobody answered and our own limits were why: that is the answer, not an empty result.
    if (lookup.closest.length === 0 && local.error !== undefined) throw local.error;
    return lookup;
  }

  /**
   * Disjoint-path value lookup. Every record returned is fully validated
   * (signatures, key, expiry); a holder answering with an invalid one counts
   * as a failed query. Collects up to `quorum` valid copies and returns the
   * highest sequence number.
   */
  async findValue(key: NodeId, options: { quorum?: number } & LookupOverrides = {}): Promise<FindValueResult> {
    // The local copy is validated like any other: the store may be a corrupted file.
    let local = this.store.get(key, this.now());
    if (local !== undefined) {
      try {
        validateRecord(local, { now: this.now(), limits: this.config.records, acceptPublisher: this.acceptPublisher });
      } catch (err) {
        // Our own store returned a record that does not validate: looked up on the network instead.
        logFailure(this.log, err, "validate a stored record", "warn");
        local = undefined;
      }
    }
    const localFailure: { error?: DhtError } = {};
    const lookup = await disjointLookup<DhtRecord>({
      ...this.lookupOptions(key, options),
      valueQuorum: options.quorum ?? 2,
      query: this.localAware(localFailure, async (contact) => {
        const body = await this.rpc(contact, { type: "FIND_VALUE", key });
        if (body.type === "NODES") return { contacts: this.contactsFrom(body.contacts) };
        if (body.type !== "VALUE") throw new DhtError("unexpected-response", `FIND_VALUE answered with ${body.type}`);
        if (!idsEqual(body.record.key, key)) throw new DhtError("key-mismatch", "holder returned a record for another key");
        validateRecord(body.record, { now: this.now(), limits: this.config.records, acceptPublisher: this.acceptPublisher });
        return { contacts: this.contactsFrom(body.contacts), value: body.record };
      }),
    });
    let best = local;
    for (const { value } of lookup.values) if (best === undefined || value.seq > best.seq) best = value;
    // "Not found" only when our own limits did not stop a query: otherwise the record may well exist.
    if (best === undefined && localFailure.error !== undefined) throw localFailure.error;
    return best === undefined ? { lookup } : { record: best, lookup };
  }

  /**
   * Stores a record on the k closest nodes to its key (and locally when
   * this node is one of them). Validates it first: a node never relays a
   * record it would refuse.
   */
  async publish(record: DhtRecord, overrides: LookupOverrides = {}): Promise<PublishResult> {
    const now = this.now();
    const size = validateRecord(record, { now, limits: this.config.records, acceptPublisher: this.acceptPublisher });
    // Storing needs the k closest nodes, not just the target: converge on k (Kademlia's rule).
    const lookup = await this.lookupNode(record.key, { ...overrides, lookupWindow: this.config.bucketSize });
    const targets: ReachedNode[] = lookup.closest;
    const result: PublishResult = { stored: [], storedLocally: false, failed: [], lookup };
    const k = this.config.bucketSize;
    const kth = targets[k - 1];
    if (targets.length < k || (kth !== undefined && compareDistance(this.nodeId, kth.contact.nodeId, record.key) < 0)) {
      try {
        this.store.put(record, size, now);
        result.storedLocally = true;
      } catch (err) {
        result.failed.push({ contact: this.contact, error: asDhtError(err) });
      }
    }
    await Promise.all(
      targets.map(async ({ contact }) => {
        try {
          const body = await this.rpc(contact, { type: "STORE", record });
          if (body.type === "STORED") result.stored.push(contact);
          else if (body.type === "ERROR") result.failed.push({ contact, error: new DhtError(body.kind, `remote refused: ${body.message}`) });
          else result.failed.push({ contact, error: new DhtError("unexpected-response", `STORE answered with ${body.type}`) });
        } catch (err) {
          result.failed.push({ contact, error: asDhtError(err) });
        }
      }),
    );
    return result;
  }

  /** Wipes expired records from the store; call periodically. */
  sweep(): number {
    return this.store.sweep(this.now());
  }

  /**
   * Holder-side re-replication (Kademlia's hourly republish): for every live
   * record this node holds, looks up the k closest nodes to its key and
   * sends them the record unchanged (owner and publisher signatures intact),
   * so nodes that joined closer to the key, or took over from nodes that
   * left, get a copy without waiting for the owner's renewal. Nodes that
   * already hold it answer "unchanged". Never throws for node failures.
   */
  async replicate(options: { maxRecords?: number } = {}): Promise<ReplicationResult> {
    const records = this.store.records(this.now()).slice(0, options.maxRecords ?? Number.POSITIVE_INFINITY);
    const result: ReplicationResult = { records: records.length, stored: 0, unchanged: 0, failed: 0 };
    for (const record of records) {
      let lookup: LookupResult<never>;
      try {
        lookup = await this.lookupNode(record.key, { lookupWindow: this.config.bucketSize });
      } catch {
        result.failed++;
        continue;
      }
      await Promise.all(
        lookup.closest.map(async ({ contact }) => {
          try {
            const body = await this.rpc(contact, { type: "STORE", record });
            if (body.type === "STORED") result[body.outcome]++;
            else result.failed++;
          } catch {
            result.failed++;
          }
        }),
      );
    }
    return result;
  }

  /**
   * Liveness sweep of the routing table: pings every contact (at most
   * `concurrency` at once) and removes those that do not answer, so replies
   * stop naming departed nodes and the replacement caches refill the
   * buckets. Candidates promoted from a replacement cache were never
   * checked, so they are pinged in a further round (at most `maxRounds`).
   * Returns how many contacts were removed.
   */
  async refreshTable(options: { concurrency?: number; maxRounds?: number } = {}): Promise<number> {
    const concurrency = Math.max(1, options.concurrency ?? 16);
    const checked = new Set<string>();
    let removed = 0;
    for (let round = 0; round < (options.maxRounds ?? 4); round++) {
      const contacts = this.table.all().filter((c) => !checked.has(contactHex(c)));
      if (contacts.length === 0) break;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < contacts.length) {
          const contact = contacts[next++] as Contact;
          checked.add(contactHex(contact));
          // Only a contact that failed on its own is removed; "unknown" (our own limits) keeps it.
          if ((await this.probe(contact)) === "dead") {
            this.table.remove(contact.nodeId);
            removed++;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, contacts.length) }, worker));
    }
    return removed;
  }

  /**
   * Runs sweep, refreshTable and replicate on timers (unref'd, so they never
   * keep a process alive). Returns a function that stops them. Defaults:
   * sweep every minute, table refresh every 15 minutes, re-replication every
   * hour (docs/spec/dht.md, "Maintenance").
   */
  startMaintenance(intervals: Partial<MaintenanceIntervals> = {}): () => void {
    const every = { ...DEFAULT_MAINTENANCE_INTERVALS, ...intervals };
    const timers = [
      setInterval(() => this.sweep(), every.sweepMs),
      setInterval(
        () =>
          this.track(
            this.refreshTable().then((removed) => void this.log.debug({ removed }, "routing table refreshed")),
            "refresh the routing table",
          ),
        every.refreshMs,
      ),
      setInterval(
        () =>
          this.track(
            this.replicate().then((result) => void this.log.debug({ ...result }, "records re-replicated")),
            "re-replicate records",
          ),
        every.replicateMs,
      ),
    ];
    for (const t of timers) t.unref();
    return () => {
      for (const t of timers) clearInterval(t);
    };
  }
}

export interface ReplicationResult {
  /** Live records this node held. */
  records: number;
  /** Copies newly stored on other nodes. */
  stored: number;
  /** Nodes that already held the record. */
  unchanged: number;
  /** Lookups or STOREs that failed or were refused. */
  failed: number;
}

export interface MaintenanceIntervals {
  sweepMs: number;
  refreshMs: number;
  replicateMs: number;
}

export const DEFAULT_MAINTENANCE_INTERVALS: MaintenanceIntervals = {
  sweepMs: 60_000,
  refreshMs: 15 * 60_000,
  replicateMs: 60 * 60_000,
};
