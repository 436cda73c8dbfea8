/**
 * Streams for apps: what `createPspClient().streams` offers (create,
 * publish, play), on top of the onion client and the consensus the client
 * holds (docs/spec/streaming.md).
 *
 * Owns: choosing a landing node (the one asked for, or a random onion relay
 * with an address) and distribution nodes (random others, excluding the
 * landing node and those already named), the creation request through a
 * fresh 3-hop circuit that ends at the landing node and is closed right
 * after (the producer abandons it), the ticket (the viewers' string) and the
 * publish token (the producer's, kept apart), and answering the landing
 * node's NEED_NODES from the consensus.
 *
 * Trusts: the onion client for the circuit; the consensus for node
 * addresses and identities (every stream link checks the node's proof).
 */
import { randomInt } from "node:crypto";
import type { Readable } from "node:stream";
import { bytesEqual } from "../base/bytes.js";
import type { Logger } from "../log.js";
import type { OnionCircuit } from "../onion/onion-client.js";
import type { PathNode } from "../onion/path.js";
import { requestStreamCreation } from "./creation.js";
import { generateStreamKey } from "./crypto.js";
import type { NodeEntry } from "./frames.js";
import { StreamMediaError } from "./media-errors.js";
import { playStream } from "./player.js";
import type { Player } from "./player.js";
import { openPublisher, publishReadable } from "./publisher.js";
import type { Publisher } from "./publisher.js";
import { decodeTicket, encodeTicket } from "./ticket.js";
import type { ViewerSession } from "./oracle-client.js";
import type { EpochTiming, UsageWindow } from "./usage.js";
import { reportPlayerUsage, type ViewerUsageReporter } from "./viewer-usage.js";

/** A session id is renewed when less than this is left of it, seconds. */
const SESSION_RENEW_MARGIN_S = 120;

/** The client's own session ids: one from an oracle, used until it nears its expiry. */
function renewingSessions(viewer: ViewerDeps): () => Promise<ViewerSession> {
  let current: ViewerSession | undefined;
  return async () => {
    if (!current || current.id.expiresAt - SESSION_RENEW_MARGIN_S <= Date.now() / 1000) current = await viewer.session();
    return current;
  };
}

export interface PspStreamsDeps {
  /** A new 3-hop circuit whose last hop is `node`. */
  circuitTo(node: PathNode): Promise<OnionCircuit>;
  /** The onion relays of the consensus held now. */
  nodes(): readonly PathNode[];
  /** Viewer sessions from oracles and the viewer's usage reports (client.ts binds them to its oracle client). */
  viewer?: ViewerDeps;
  logger?: Logger;
}

/** What a player needs to get its own session ids and report what it received under them. */
export interface ViewerDeps {
  session(): Promise<ViewerSession>;
  /** Signs `window` with the session's viewer key and hands it to an oracle through a circuit. */
  report(session: ViewerSession, window: UsageWindow): Promise<void>;
  /** The reward epochs' clock, so no window straddles an epoch. */
  epochClock(): Promise<EpochTiming>;
  /** Seconds between the viewer's usage windows (default 300). */
  reportIntervalSeconds?: number;
}

export interface CreateStreamOptions {
  /** The creation receipt from an oracle (stream/oracle-client.ts, or a blind receipt). */
  receipt: Uint8Array;
  /** Bitrate cap, kbit/s (default 2000; at most the receipt's). */
  kbps?: number;
  /** Duration, seconds (default 3600; at most the receipt's). */
  durationS?: number;
  public?: boolean;
  /** Distribution nodes: how many to pick from the consensus (default 2), or which. */
  distribution?: number | NodeEntry[];
  /** The landing node's identity; default: a random onion relay. */
  landing?: Uint8Array;
}

export interface CreatedStreamInfo {
  /** For viewers (hand it out privately): stream id, stream key, landing node. */
  ticket: string;
  /** For the producer only: proves the right to publish. */
  token: Uint8Array;
  /** ms since the epoch. */
  expiresAt: number;
}

export interface PublishOptions {
  ticket: string;
  token: Uint8Array;
  /** When given, published until it ends (then the stream ends); the promise resolves then. */
  input?: Readable;
}

export interface PlayOptions {
  ticket: string;
  /**
   * Session ids, asked before each attach. Default: the client's own, from an
   * oracle, renewed before they expire. A ViewerSession (oracle.session())
   * is reported under, so the nodes that carried the stream are paid; bare
   * session bytes are not reported.
   */
  session?: () => Promise<Uint8Array | ViewerSession> | Uint8Array | ViewerSession;
  reattachTimeoutMs?: number;
}

export interface PspStreams {
  create(options: CreateStreamOptions): Promise<CreatedStreamInfo>;
  publish(options: PublishOptions): Promise<Publisher>;
  play(options: PlayOptions): Promise<Player>;
}

const dialable = (n: PathNode): boolean => n.host !== "" && n.port > 0;
const entryOf = (n: PathNode): NodeEntry => ({ identity: n.identity, host: n.host, port: n.port, load: 0 });

function pick<T>(items: readonly T[], count: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < count && pool.length > 0) out.push(pool.splice(randomInt(pool.length), 1)[0] as T);
  return out;
}

export function createPspStreams(deps: PspStreamsDeps): PspStreams {
  const others = (exclude: readonly Uint8Array[]): PathNode[] => deps.nodes().filter((n) => dialable(n) && !exclude.some((e) => bytesEqual(e, n.identity)));
  return {
    async create(options) {
      const nodes = deps.nodes().filter(dialable);
      const landing = options.landing ? nodes.find((n) => bytesEqual(n.identity, options.landing as Uint8Array)) : pick(nodes, 1)[0];
      if (!landing)
        throw new StreamMediaError(
          "unreachable",
          options.landing ? "the landing node asked for is not a dialable onion relay of the consensus" : "the consensus lists no onion relay",
        );
      const distribution =
        typeof options.distribution === "object" ? options.distribution : pick(others([landing.identity]), options.distribution ?? 2).map(entryOf);
      const circuit = await deps.circuitTo(landing);
      try {
        const created = await requestStreamCreation(await circuit.openStream("stream"), {
          receipt: options.receipt,
          kbps: options.kbps ?? 2000,
          durationS: options.durationS ?? 3600,
          public: options.public ?? false,
          distribution,
        });
        const ticket = encodeTicket({
          streamId: created.streamId,
          streamKey: generateStreamKey(),
          landing: landing.identity,
          host: landing.host,
          port: landing.port,
        });
        return { ticket, token: created.token, expiresAt: created.expiresAt };
      } finally {
        // The producer abandons the circuit: nothing else travels on it.
        circuit.close();
      }
    },
    async publish(options) {
      const ticket = decodeTicket(options.ticket);
      const publisher = await openPublisher({
        ticket,
        token: options.token,
        moreNodes: (count) => Promise.resolve(pick(others([ticket.landing]), count).map(entryOf)),
        ...(deps.logger ? { logger: deps.logger } : {}),
      });
      if (options.input) await publishReadable(publisher, options.input);
      return publisher;
    },
    async play(options) {
      const viewer = deps.viewer;
      const provider = options.session ?? (viewer ? renewingSessions(viewer) : undefined);
      if (!provider) throw new StreamMediaError("bad-argument", "play needs a session provider: this client has no oracle to get session ids from");
      // Sessions in the order they were used: a window is signed under the one it was counted under.
      const used: { since: number; session: ViewerSession }[] = [];
      let reporter: ViewerUsageReporter | undefined;
      const session = async (): Promise<Uint8Array> => {
        const s = await provider();
        if (s instanceof Uint8Array) return s;
        if (used.at(-1)?.session !== s) {
          await reporter?.cut();
          used.push({ since: Math.floor(Date.now() / 1000), session: s });
        }
        return s.session;
      };
      const player = await playStream({
        ticket: decodeTicket(options.ticket),
        session,
        ...(options.reattachTimeoutMs === undefined ? {} : { reattachTimeoutMs: options.reattachTimeoutMs }),
        ...(deps.logger ? { logger: deps.logger } : {}),
      });
      if (viewer && used.length > 0) {
        let clock: EpochTiming | undefined;
        viewer.epochClock().then(
          (c) => (clock = c),
          (err: unknown) => deps.logger?.warn({ err }, "the reward epochs' clock could not be read: viewer windows follow the interval grid only"),
        );
        reporter = reportPlayerUsage(player, {
          epoch: () => clock,
          ...(viewer.reportIntervalSeconds === undefined ? {} : { intervalSeconds: viewer.reportIntervalSeconds }),
          send: async (window) => {
            const under = [...used].reverse().find((u) => u.since <= window.from) ?? used[0]!;
            await viewer.report(under.session, window);
          },
          ...(deps.logger ? { logger: deps.logger } : {}),
        });
      }
      return player;
    },
  };
}
