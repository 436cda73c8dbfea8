/**
 * The commercial node's onion service "commercial" (docs/spec/commercial.md
 * "Node"): the applications' plugin services at the end of circuits.
 *
 * Owns, per stream: the open handshake (messages.ts) and its refusals
 * (an application this node does not serve, an unknown service, a missing or
 * bad identity proof, a replayed nonce, a spent budget), then the service's
 * messages: request services through the stream RPC (onion/stream-rpc.ts:
 * per-stream requests in flight, size caps, typed ERROR replies), duplex
 * services as raw messages both ways with the same caps. Per client (the
 * proven identity, else the circuit) one token bucket counts opens, requests
 * and duplex messages. A bad message never ends the process; at worst its
 * stream.
 *
 * Trusts: the onion layer for whole, ordered messages; the injected
 * certificate check (authority/certificate.ts through the node's consensus)
 * for identities; the plugins' code (the operator chose to load it). Nothing
 * in the messages.
 */
import { hexOf as bytesToHex } from "../base/hex.js";
import { KeyedRateLimiter } from "../base/token-bucket.js";
import { parseIdentity } from "../crypto/identity.js";
import { PspError } from "../errors.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { EndReason } from "../onion/constants.js";
import { createStreamRpcService, StreamRpcError } from "../onion/stream-rpc.js";
import type { StreamRpcService } from "../onion/stream-rpc.js";
import type { LocalService, ServiceHandler, ServiceStream } from "../onion/types.js";
import { CommercialError } from "./errors.js";
import type { CommercialErrorKind } from "./errors.js";
import { checkOpenProof, decodeOpen, encodeOpenReply } from "./messages.js";
import type { OpenMessage } from "./messages.js";
import type { CommercialContext, CommercialPlugin, CommercialService, DuplexSession } from "./plugin.js";

/** One application this node serves. */
export interface ServedApplication {
  /** 32-byte application id (IdentityRegistry.applicationIdOf). */
  appId: Uint8Array;
  /** "<namespace>.<application>". */
  name: string;
  plugin: CommercialPlugin;
}

export interface CommercialLimits {
  /** Sustained opens + requests + duplex messages per client per minute (default 600). */
  requestsPerMinute: number;
  /** Bucket size (default 60). */
  burst: number;
  /** Largest request, response or duplex message unless the service says less (default 16 KiB). */
  maxMessageBytes: number;
  /** Requests of one stream in the service at once (default 8). */
  maxInflight: number;
  /** Clients whose buckets are remembered (default 10,000; the least recently seen go first). */
  maxClients: number;
}

export const DEFAULT_COMMERCIAL_LIMITS: Readonly<CommercialLimits> = Object.freeze({
  requestsPerMinute: 600,
  burst: 60,
  maxMessageBytes: 16 * 1024,
  maxInflight: 8,
  maxClients: 10_000,
});

/** Open proofs dated further than this from the node's clock are refused "replayed" (and nonces are kept this long). */
export const OPEN_PROOF_WINDOW_MS = 5 * 60_000;

/** What the certificate check returns: the identity string and its key. */
export interface CheckedIdentity {
  identity: string;
  key: Uint8Array;
}

export interface CommercialServerOptions {
  /** This node's Ed25519 identity key (open proofs are bound to it). */
  nodeIdentity: Uint8Array;
  applications: readonly ServedApplication[];
  limits?: Partial<CommercialLimits>;
  /** Verifies an access certificate (threshold of current authorities); throws when it does not verify. Without it identities are refused. */
  verifyCertificate?: (cert: Uint8Array) => CheckedIdentity;
  /** Wall clock in ms (open proofs carry wall-clock times); default Date.now. */
  now?: () => number;
  /** Sends cells queued by replies made after an await (startNode: `() => driver.run(() => undefined)`). */
  flush?: () => void;
  /** Logs as component "commercial"; silent when absent. */
  logger?: Logger;
}

export interface CommercialStats {
  streams: number;
  opened: number;
  requests: number;
  duplexMessages: number;
  /** Refusals by kind (open refusals and request refusals). */
  refusals: Partial<Record<CommercialErrorKind, number>>;
}

export interface CommercialServer {
  readonly service: LocalService;
  readonly stats: CommercialStats;
  /** Application ids served, ascending hex. */
  readonly applicationIds: string[];
}

interface Session {
  ctx: CommercialContext;
}

/** Builds the "commercial" onion service for `applications`. Throws CommercialError "bad-argument". */
export function createCommercialServer(options: CommercialServerOptions): CommercialServer {
  const limits: CommercialLimits = { ...DEFAULT_COMMERCIAL_LIMITS, ...options.limits };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new CommercialError("bad-argument", `limits.${k} must be a positive integer, got ${String(v)}`);
  }
  if (!(options.nodeIdentity instanceof Uint8Array) || options.nodeIdentity.length !== 32)
    throw new CommercialError("bad-argument", "nodeIdentity must be the node's 32-byte Ed25519 key");
  const apps = new Map<string, ServedApplication>();
  for (const app of options.applications) {
    if (!(app.appId instanceof Uint8Array) || app.appId.length !== 32)
      throw new CommercialError("bad-argument", `application ${app.name}: appId must be 32 bytes`);
    apps.set(bytesToHex(app.appId), app);
  }
  const now = options.now ?? Date.now;
  const log = childLogger(options.logger, "commercial");
  const stats: CommercialStats = { streams: 0, opened: 0, requests: 0, duplexMessages: 0, refusals: {} };
  /** Sends what duplex services queued outside the relay's round (a timer, an await); coalesced per microtask. */
  let flushQueued = false;
  const flushSoon = (): void => {
    if (!options.flush || flushQueued) return;
    flushQueued = true;
    queueMicrotask(() => {
      flushQueued = false;
      try {
        options.flush?.();
      } catch (err) {
        // The driver is stopped (node closing): nothing to send any more.
        logFailure(log, err, "flush duplex messages", "debug");
      }
    });
  };
  const count = (kind: CommercialErrorKind): void => {
    stats.refusals[kind] = (stats.refusals[kind] ?? 0) + 1;
  };

  // ------------------------------------------------------------ budgets
  const budgets = new KeyedRateLimiter({ requestsPerMinute: limits.requestsPerMinute, burst: limits.burst, maxKeys: limits.maxClients });
  /** Takes one token of `client`'s budget; the refusal carries when to retry. */
  const spend = (client: string): void => {
    const retryAfterMs = budgets.take(client, performance.now());
    if (retryAfterMs > 0) {
      throw new CommercialError("rate-limited", `this client's budget at the node is spent (${limits.requestsPerMinute} per minute, burst ${limits.burst})`, {
        retryAfterMs,
      });
    }
  };

  // ------------------------------------------------------------ replay cache
  const nonces = new Map<string, number>();
  const seen = (nonce: Uint8Array, at: number): boolean => {
    for (const [k, until] of nonces) {
      if (until > at) break;
      nonces.delete(k);
    }
    const key = bytesToHex(nonce);
    if (nonces.has(key)) return true;
    nonces.set(key, at + 2 * OPEN_PROOF_WINDOW_MS);
    return false;
  };

  // ------------------------------------------------------------ request services
  const sessions = new Map<string, Session>();
  const sessionKey = (circuitId: number, streamId: number) => `${circuitId}:${streamId}`;
  const rpcServices = new Map<CommercialService, StreamRpcService>();
  const rpcFor = (service: CommercialService & { mode: "request" }): StreamRpcService => {
    let rpc = rpcServices.get(service);
    if (rpc) return rpc;
    rpc = createStreamRpcService(
      async (request, rpcCtx) => {
        const session = sessions.get(sessionKey(rpcCtx.circuitId, rpcCtx.streamId));
        if (!session) throw new StreamRpcError("refused", "the stream is not open", { code: "malformed" });
        try {
          spend(session.ctx.client);
          stats.requests++;
          const answer = await service.handle(request, session.ctx);
          if (!(answer instanceof Uint8Array))
            throw new CommercialError("handler-failed", `service ${session.ctx.service} answered with something other than bytes`);
          return answer;
        } catch (err) {
          const kind: CommercialErrorKind = err instanceof CommercialError ? err.kind : err instanceof PspError ? "refused" : "handler-failed";
          count(kind);
          if (err instanceof PspError) {
            // The kind travels as the refusal's code; a plugin's own PspError keeps its kind in the text.
            throw new StreamRpcError("refused", err.message, { code: err instanceof CommercialError ? err.kind : "refused" });
          }
          logFailure(log, err, `answer a ${session.ctx.application}/${session.ctx.service} request`, "warn");
          throw err;
        }
      },
      {
        maxMessageBytes: Math.min(service.maxMessageBytes ?? limits.maxMessageBytes, limits.maxMessageBytes),
        maxInflight: limits.maxInflight,
        onStreamEnd: (rpcCtx) => sessions.delete(sessionKey(rpcCtx.circuitId, rpcCtx.streamId)),
        ...(options.flush ? { flush: options.flush } : {}),
        ...(options.logger ? { logger: log } : {}),
      },
    );
    rpcServices.set(service, rpc);
    return rpc;
  };

  // ------------------------------------------------------------ the open handshake
  /** Judges an open message; returns the service and context, or throws the refusal. */
  const admit = (open: OpenMessage, stream: ServiceStream): { service: CommercialService; ctx: CommercialContext } => {
    const app = apps.get(bytesToHex(open.app));
    if (!app) throw new CommercialError("unknown-application", `this node does not serve application ${bytesToHex(open.app)}`);
    const service = Object.hasOwn(app.plugin.services, open.service) ? app.plugin.services[open.service] : undefined;
    if (!service)
      throw new CommercialError(
        "unknown-service",
        `${app.name} has no service ${open.service} on this node; it serves ${Object.keys(app.plugin.services).join(", ")}`,
      );
    let identity: string | undefined;
    if (open.proof) {
      if (!options.verifyCertificate)
        throw new CommercialError("bad-certificate", "this node cannot check access certificates (it holds no consensus with authorities)");
      let checked: CheckedIdentity;
      try {
        checked = options.verifyCertificate(open.proof.cert);
      } catch (err) {
        throw new CommercialError("bad-certificate", `the access certificate does not verify: ${(err as Error).message}`, { cause: err });
      }
      const parsed = parseIdentity(checked.identity);
      if (`${parsed.namespace}.${parsed.application}` !== app.name) {
        throw new CommercialError("bad-certificate", `the certificate is for an identity of ${parsed.namespace}.${parsed.application}, not of ${app.name}`);
      }
      const t = now();
      if (Math.abs(open.proof.ts - t) > OPEN_PROOF_WINDOW_MS)
        throw new CommercialError("replayed", `the open proof is dated ${open.proof.ts - t} ms from this node's clock (window ±${OPEN_PROOF_WINDOW_MS} ms)`);
      if (!checkOpenProof(open.proof, checked.key, { node: options.nodeIdentity, app: open.app, service: open.service })) {
        throw new CommercialError("bad-certificate", "the open proof is not the certificate identity's signature for this node, application and service");
      }
      if (seen(open.proof.nonce, t)) throw new CommercialError("replayed", "this open proof was used before");
      identity = checked.identity;
    } else if (service.requiresIdentity) {
      throw new CommercialError("needs-identity", `${app.name}/${open.service} serves identified clients only: present an access certificate`);
    }
    const client = identity ?? `circuit:${stream.circuitId}`;
    spend(client);
    return { service, ctx: Object.freeze({ application: app.name, service: open.service, identity, client }) };
  };

  const service: LocalService = (stream) => {
    stats.streams++;
    let delegate: ServiceHandler | undefined;
    let open = true;
    const refuse = (err: CommercialError): void => {
      count(err.kind);
      try {
        stream.send(
          encodeOpenReply({
            t: "refused",
            kind: err.kind,
            message: err.message,
            ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
          }),
        );
      } catch (sendErr) {
        logFailure(log, sendErr, "send an open refusal", "debug");
      }
      open = false;
      stream.end(EndReason.DONE);
    };
    const startDuplex = (svc: CommercialService & { mode: "duplex" }, ctx: CommercialContext, max: number): ServiceHandler => {
      const io = {
        send(message: Uint8Array) {
          if (!open) throw new CommercialError("closed", "the stream is closed");
          if (message.length > max) throw new CommercialError("too-large", `message of ${message.length} bytes; the limit is ${max}`);
          try {
            stream.send(message);
            flushSoon();
          } catch (err) {
            open = false;
            stream.end(EndReason.RESOURCELIMIT);
            throw new CommercialError("closed", "the client does not take its messages: stream ended", { cause: err });
          }
        },
        end() {
          if (!open) return;
          open = false;
          stream.end(EndReason.DONE);
        },
      };
      let session: DuplexSession;
      try {
        session = svc.open(io, ctx);
      } catch (err) {
        logFailure(log, err, `open a ${ctx.application}/${ctx.service} duplex stream`, "warn");
        count("handler-failed");
        open = false;
        stream.end(EndReason.INTERNAL);
        return { onMessage: () => undefined };
      }
      return {
        onMessage(message) {
          if (!open) return;
          try {
            if (message.length > max) throw new CommercialError("too-large", `message of ${message.length} bytes; the limit is ${max}`);
            spend(ctx.client);
            stats.duplexMessages++;
            session.onMessage(message);
          } catch (err) {
            // No in-band refusal on a duplex stream: it ends (counted), the node keeps serving.
            count(err instanceof CommercialError ? err.kind : "handler-failed");
            if (!(err instanceof CommercialError)) logFailure(log, err, `handle a ${ctx.application}/${ctx.service} message`, "warn");
            open = false;
            stream.end(EndReason.RESOURCELIMIT);
          }
        },
        onEnd() {
          open = false;
          try {
            session.onEnd?.();
          } catch (err) {
            logFailure(log, err, `end a ${ctx.application}/${ctx.service} duplex stream`, "warn");
          }
        },
      };
    };
    return {
      onMessage(message, at) {
        if (!open) return;
        if (delegate) return delegate.onMessage(message, at);
        let admitted: { service: CommercialService; ctx: CommercialContext };
        try {
          admitted = admit(decodeOpen(message), stream);
        } catch (err) {
          if (err instanceof CommercialError) return refuse(err);
          if (err instanceof PspError) return refuse(new CommercialError("bad-certificate", err.message, { cause: err }));
          throw err;
        }
        const { service: svc, ctx } = admitted;
        stats.opened++;
        const max = Math.min(svc.maxMessageBytes ?? limits.maxMessageBytes, limits.maxMessageBytes);
        stream.send(encodeOpenReply({ t: "ok", mode: svc.mode, maxMessageBytes: max }));
        if (svc.mode === "request") {
          sessions.set(sessionKey(stream.circuitId, stream.streamId), { ctx });
          const handler = rpcFor(svc).service(stream, at);
          if (typeof handler === "number") {
            open = false;
            stream.end(handler);
            return;
          }
          delegate = handler;
        } else {
          delegate = startDuplex(svc, ctx, max);
        }
      },
      onEnd(reason, at) {
        open = false;
        sessions.delete(sessionKey(stream.circuitId, stream.streamId));
        delegate?.onEnd?.(reason, at);
      },
      onDrain(at) {
        delegate?.onDrain?.(at);
      },
    };
  };
  return { service, stats, applicationIds: [...apps.keys()].sort() };
}
