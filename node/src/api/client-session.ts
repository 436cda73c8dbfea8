/**
 * What the client daemon (`psp client run`) holds for the apps that talk to
 * it, free of HTTP: the channels open now under short ids, the
 * introductions waiting for an app's answer, and the stream of events the
 * apps' sockets receive (client-daemon.ts serves it).
 *
 * Introductions are offered to the apps listening on sockets; with none
 * listening, or with no answer before the presence node's own decision
 * deadline, they are refused, as createPspClient refuses them with no
 * listener. Every channel, opened by `connect` or by an accepted
 * introduction, is read here at once: its messages go to the sockets, and
 * while no socket is attached, events wait in a bounded backlog handed to
 * the next socket (the peer's acknowledgement already went out when the
 * message arrived, so nothing is dropped without a `dropped` event saying
 * how many).
 *
 * Trusts the client for everything about peers; checks every id and body an
 * app sends.
 */
import { randomBytes } from "node:crypto";
import { consensusSummary } from "../client/client.js";
import type { ConsensusSummary, PspClientEvents } from "../client/client.js";
import type { VerifiedConsensus } from "../directory/consensus.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import type { PresenceChannel } from "../presence/channel.js";
import type { AnnounceOptions, ConnectOptions, FoundPoint, IncomingIntroduction, PointInfo } from "../presence/client.js";
import { PRESENCE_FLAG_PUBLIC } from "../presence/record.js";
import { ApiError } from "./errors.js";

/** The part of PspClient the daemon uses (a PspClient is one). */
export interface SessionClient {
  readonly identity: string | undefined;
  readonly consensus: VerifiedConsensus | undefined;
  readonly presence: { announce(options?: AnnounceOptions): Promise<PointInfo[]>; withdraw(): void; status(): PointInfo[] };
  lookup(identity: string): Promise<FoundPoint[]>;
  connect(identity: string, options?: ConnectOptions): Promise<PresenceChannel>;
  on<E extends keyof PspClientEvents>(event: E, listener: (...args: PspClientEvents[E]) => void): unknown;
  off<E extends keyof PspClientEvents>(event: E, listener: (...args: PspClientEvents[E]) => void): unknown;
}

export interface ChannelInfo {
  id: string;
  peer: string;
  role: "initiator" | "responder";
}

export interface IntroductionInfo {
  id: string;
  from: string;
  /** Unix seconds at which the introducer's certificate expires. */
  certificateNotAfter: number;
}

/** A presence point as a lookup finds it, keys in hex. */
export interface FoundPointInfo {
  slot: number;
  node: string;
  public: boolean;
  points: number;
  period: number;
  /** When its owner signed it, ms since the epoch. */
  issuedAt: number;
}

/** What the apps' sockets receive, one JSON object per WebSocket message. */
export type SessionEvent =
  | ({ type: "introduction" } & IntroductionInfo)
  | { type: "introduction-expired"; id: string; from: string }
  | ({ type: "channel" } & ChannelInfo)
  | { type: "message"; channel: string; from: string; id: number; text: string; base64: string }
  | { type: "closed"; channel: string; peer: string; error?: { kind: string; message: string } }
  | { type: "presence"; point: PointInfo }
  | { type: "cap-reached"; slot: number; cap: string; limit: number }
  | { type: "dropped"; events: number };

export type EventSink = (event: SessionEvent) => void;

export interface SessionOptions {
  logger?: Logger;
  /** How long an introduction waits for an app's answer (default 25 s, inside the presence node's 30 s). */
  decisionTimeoutMs?: number;
  /** Events kept for the next socket while none is attached (default 1024). */
  backlogLimit?: number;
}

export interface SessionStatus {
  identity: string | null;
  consensus: ConsensusSummary | null;
  presence: { announced: boolean; points: PointInfo[] };
  channels: number;
  introductions: number;
  sockets: number;
}

interface Pending {
  info: IntroductionInfo;
  intro: IncomingIntroduction;
  timer: NodeJS.Timeout;
}

const newId = (): string => randomBytes(8).toString("hex");

export class ClientSession {
  private readonly log: Logger;
  private readonly sinks = new Set<EventSink>();
  private readonly backlog: SessionEvent[] = [];
  private droppedEvents = 0;
  private readonly open = new Map<string, { info: ChannelInfo; channel: PresenceChannel }>();
  private readonly idOf = new WeakMap<PresenceChannel, string>();
  private readonly pending = new Map<string, Pending>();
  private announced = false;
  private readonly decisionTimeoutMs: number;
  private readonly backlogLimit: number;
  private readonly listeners: { [E in keyof PspClientEvents]?: (...args: PspClientEvents[E]) => void } = {
    introduction: (intro) => this.onIntroduction(intro),
    channel: (channel) => this.onChannel(channel),
    presence: (point) => this.emit({ type: "presence", point }),
    "cap-reached": (cap) => this.emit({ type: "cap-reached", ...cap }),
  };

  constructor(
    private readonly client: SessionClient,
    options: SessionOptions = {},
  ) {
    this.log = childLogger(options.logger, "session");
    this.decisionTimeoutMs = options.decisionTimeoutMs ?? 25_000;
    this.backlogLimit = options.backlogLimit ?? 1024;
    for (const [event, listener] of Object.entries(this.listeners)) client.on(event as keyof PspClientEvents, listener as () => void);
  }

  // ------------------------------------------------------------ sockets

  /** Attaches an app's socket: it gets the backlog, then every event; returns the detach function. */
  attach(sink: EventSink): () => void {
    if (this.droppedEvents > 0) {
      sink({ type: "dropped", events: this.droppedEvents });
      this.droppedEvents = 0;
    }
    for (const event of this.backlog.splice(0)) sink(event);
    this.sinks.add(sink);
    return () => {
      this.sinks.delete(sink);
    };
  }

  private emit(event: SessionEvent): void {
    if (this.sinks.size === 0) {
      this.backlog.push(event);
      if (this.backlog.length > this.backlogLimit) {
        this.backlog.shift();
        this.droppedEvents++;
        if (this.droppedEvents === 1) this.log.warn(`no app is attached and ${this.backlogLimit} events wait: the oldest are dropped`);
      }
      return;
    }
    for (const sink of this.sinks) {
      try {
        sink(event);
      } catch (err) {
        logFailure(this.log, err, `deliver a ${event.type} event to an app`);
      }
    }
  }

  // ------------------------------------------------------------ status and presence

  status(): SessionStatus {
    const c = this.client.consensus;
    return {
      identity: this.client.identity ?? null,
      consensus: c ? consensusSummary(c) : null,
      presence: { announced: this.announced, points: this.client.presence.status() },
      channels: this.open.size,
      introductions: this.pending.size,
      sockets: this.sinks.size,
    };
  }

  async announce(options: { points?: number; public?: boolean }): Promise<PointInfo[]> {
    const points = await this.client.presence.announce({ ...(options.points === undefined ? {} : { points: options.points }), public: options.public ?? false });
    this.announced = true;
    return points;
  }

  withdraw(): void {
    this.client.presence.withdraw();
    this.announced = false;
  }

  async lookup(identity: string): Promise<FoundPointInfo[]> {
    const found = await this.client.lookup(identity);
    return found.map((p) => ({
      slot: p.slot,
      node: Buffer.from(p.node).toString("hex"),
      public: (p.flags & PRESENCE_FLAG_PUBLIC) !== 0,
      points: p.points,
      period: p.period,
      issuedAt: p.issuedAt,
    }));
  }

  // ------------------------------------------------------------ channels

  async connect(to: string, options: { direct?: boolean; timeoutMs?: number }): Promise<ChannelInfo> {
    const channel = await this.client.connect(to, {
      ...(options.direct === undefined ? {} : { direct: options.direct }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    return this.infoOf(channel);
  }

  channels(): ChannelInfo[] {
    return [...this.open.values()].map((c) => c.info);
  }

  /** Sends one message on channel `id`; resolves once the peer acknowledged it. */
  async send(id: string, body: Uint8Array): Promise<void> {
    await this.channel(id).send(body);
  }

  closeChannel(id: string): void {
    this.channel(id).close();
  }

  private channel(id: string): PresenceChannel {
    const open = this.open.get(id);
    if (!open) throw new ApiError("not-found", `no open channel ${id}: GET /v1/channels lists them`);
    return open.channel;
  }

  /** The info of a channel the "channel" event registered (connect and accept emit it before they return). */
  private infoOf(channel: PresenceChannel): ChannelInfo {
    const id = this.idOf.get(channel) ?? this.onChannel(channel);
    return { id, peer: channel.peer, role: channel.role };
  }

  private onChannel(channel: PresenceChannel): string {
    const known = this.idOf.get(channel);
    if (known) return known;
    const info: ChannelInfo = { id: newId(), peer: channel.peer, role: channel.role };
    this.idOf.set(channel, info.id);
    this.open.set(info.id, { info, channel });
    this.emit({ type: "channel", ...info });
    void this.pump(info, channel);
    return info.id;
  }

  /** Reads channel `info` until it closes, turning its messages into events. */
  private async pump(info: ChannelInfo, channel: PresenceChannel): Promise<void> {
    for await (const m of channel.messages()) {
      this.emit({ type: "message", channel: info.id, from: m.from, id: m.id, text: m.text, base64: Buffer.from(m.body).toString("base64") });
    }
    const err = await channel.closed;
    this.open.delete(info.id);
    this.emit({ type: "closed", channel: info.id, peer: info.peer, ...(err ? { error: { kind: err.kind, message: err.message } } : {}) });
  }

  // ------------------------------------------------------------ introductions

  introductions(): IntroductionInfo[] {
    return [...this.pending.values()].map((p) => p.info);
  }

  private onIntroduction(intro: IncomingIntroduction): void {
    if (this.sinks.size === 0) {
      this.log.info({ from: intro.from }, "introduction refused: no app is attached to /v1/events");
      intro.refuse();
      return;
    }
    const info: IntroductionInfo = { id: newId(), from: intro.from, certificateNotAfter: intro.certificateNotAfter };
    const timer = setTimeout(() => {
      if (!this.pending.delete(info.id)) return;
      intro.refuse();
      this.emit({ type: "introduction-expired", id: info.id, from: info.from });
    }, this.decisionTimeoutMs);
    this.pending.set(info.id, { info, intro, timer });
    this.emit({ type: "introduction", ...info });
  }

  private take(id: string): Pending {
    const p = this.pending.get(id);
    if (!p) throw new ApiError("not-found", `no introduction ${id} waits for an answer: it was answered, it expired, or it never came`);
    this.pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }

  /** Accepts introduction `id`: joins the introducer's rendezvous; resolves with the new channel. */
  async accept(id: string): Promise<ChannelInfo> {
    const channel = await this.take(id).intro.accept();
    return this.infoOf(channel);
  }

  refuse(id: string): void {
    this.take(id).intro.refuse();
  }

  /** Refuses what waits, closes every channel and stops listening to the client. */
  close(): void {
    for (const id of [...this.pending.keys()]) this.refuse(id);
    for (const { channel } of this.open.values()) channel.close();
    for (const [event, listener] of Object.entries(this.listeners)) this.client.off(event as keyof PspClientEvents, listener as () => void);
    this.sinks.clear();
  }
}
