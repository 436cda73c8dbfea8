/**
 * The authority service through circuits: service "authority" an authority
 * node offers at the end of 3-hop circuits, and the client's
 * AuthorityTransport over such a stream, so `requestAccessCertificate` and
 * `remoteAttester` work without the authority learning the client's address
 * (docs/spec/authority.md "Through circuits").
 *
 * Owns: the rate-limit key a circuit gives the service ("circuit:<local
 * serial>": anonymous, one budget per circuit; the service's per-identity
 * budget still applies to every certificate or attestation request), and the
 * mapping of stream-RPC failures to AuthorityError kinds.
 *
 * Trusts: service.ts for every check on a request (the client's identity
 * is proven inside the messages, by signatures over the authority's
 * challenge, not by the link or circuit); the onion layer for delivery. The
 * client checks every endorsement it gets (service.ts), so a relay or a
 * fake service at the end of the circuit can refuse but not forge.
 */
import { AuthorityError, MAX_AUTHORITY_MESSAGE_BYTES } from "./service.js";
import type { AuthorityService, AuthorityTransport } from "./service.js";
import { createStreamRpc, streamRpcService, StreamRpcError } from "../onion/stream-rpc.js";
import type { RpcStream, StreamRpc } from "../onion/stream-rpc.js";
import type { LocalService } from "../onion/types.js";
import type { Logger } from "../log.js";

/** The onion service name. */
export const AUTHORITY_CIRCUIT_SERVICE = "authority";
/** Default deadline for one authority request through a circuit. */
export const DEFAULT_AUTHORITY_CIRCUIT_TIMEOUT_MS = 15_000;

export interface AuthorityCircuitServiceOptions {
  /** Requests of one stream in progress at once (default 4); one more is refused "busy". */
  maxInflight?: number;
  /** See StreamRpcServiceOptions.flush (startNode: `() => driver.run(() => undefined)`). */
  flush?: () => void;
  /** The stream RPC under the service logs beneath it (replies it could not send); silent when absent. */
  logger?: Logger;
}

/** The rate-limit key of a request that came through local circuit `circuitId`. */
export function circuitClientKey(circuitId: number): string {
  return `circuit:${circuitId}`;
}

/**
 * Serves `service` (from createAuthorityService) to anonymous clients at the
 * end of circuits. Requests and responses are authority messages unchanged
 * (at most MAX_AUTHORITY_MESSAGE_BYTES); refusals travel as `error` messages.
 */
export function authorityCircuitService(service: Pick<AuthorityService, "handleMessage">, options: AuthorityCircuitServiceOptions = {}): LocalService {
  if (typeof service?.handleMessage !== "function") {
    throw new AuthorityError("malformed-request", "authorityCircuitService needs the service from createAuthorityService");
  }
  return streamRpcService((request, ctx) => service.handleMessage(request, { client: circuitClientKey(ctx.circuitId) }), {
    maxMessageBytes: MAX_AUTHORITY_MESSAGE_BYTES,
    maxInflight: options.maxInflight ?? 4,
    ...(options.flush ? { flush: options.flush } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

/** An AuthorityTransport with the stream RPC under it (close ends the stream). */
export interface CircuitAuthorityTransport extends AuthorityTransport {
  readonly rpc: StreamRpc;
  close(): void;
}

/**
 * An AuthorityTransport over a stream opened to service "authority" at the
 * last hop of a circuit (`circuit.openStream("authority")`). Transport
 * failures become AuthorityError "busy" (with retryAfterMs) or
 * "unreachable"; the authority's own refusals arrive as `error` messages and
 * are typed by service.ts.
 */
export function circuitAuthorityTransport(stream: RpcStream, options: { timeoutMs?: number } = {}): CircuitAuthorityTransport {
  const rpc = createStreamRpc(stream, { maxMessageBytes: MAX_AUTHORITY_MESSAGE_BYTES });
  const timeoutMs = options.timeoutMs ?? DEFAULT_AUTHORITY_CIRCUIT_TIMEOUT_MS;
  const transport = async (request: Uint8Array): Promise<Uint8Array> => {
    try {
      return await rpc.request(request, { timeoutMs });
    } catch (err) {
      if (err instanceof StreamRpcError && err.kind === "busy") {
        throw new AuthorityError("busy", `the authority at the end of the circuit is busy: ${err.message}`, { cause: err, retryAfterMs: 1000 });
      }
      if (err instanceof StreamRpcError && err.kind === "oversized") {
        throw new AuthorityError("too-large", err.message, { cause: err });
      }
      const reason = err instanceof StreamRpcError ? `${err.kind}: ${err.message}` : String(err);
      throw new AuthorityError("unreachable", `the authority at the end of the circuit could not be reached: ${reason}`, { cause: err });
    }
  };
  return Object.assign(transport, { rpc, close: () => rpc.close() });
}
