/**
 * The link layer: authenticated TLS 1.3 links carrying 512-byte cells, the
 * connection manager that keeps one link per peer identity, and request/response
 * RPC over links. This file only re-exports.
 *
 * Depends on: base/, crypto/, wire/ (node:tls, @peculiar/x509 for throwaway certificates).
 * Used by: onion/ (circuits over links), directory/, dht/, authority/, node/.
 * Trust boundary: trusts TLS for the exported keying material only; the peer's
 * identity is whatever its AUTH signature over the transcript proves, and
 * nothing it sends is trusted. Frozen vector: test/vectors/link-auth.json.
 * Spec: docs/spec/link.md.
 */
export { CloseReason, LINK_CAPS, LinkError, closeReasonName } from "./errors.js";
export type { CloseReasonCode, CloseReasonName, LinkCap, LinkErrorKind } from "./errors.js";
export { DEFAULT_LINK_OPTIONS, Link } from "./link.js";
export type { LinkCellHandler, LinkCloseInfo, LinkEvents, LinkOptions, LinkState, LinkStats } from "./link.js";
export { ConnectionManager, createConnectionManager, inboundLimits } from "./manager.js";
export type { ConnectionManagerEvents, ConnectionManagerOptions, InboundLimits, ManagerStats, PeerAddress } from "./manager.js";
export { LinkHandshake, authTranscript, EKM_LABEL, EKM_LEN } from "./handshake.js";
export type { HandshakeOptions, HandshakeResult, HandshakeStep, LinkRole } from "./handshake.js";
export { CellFramer, SUPPORTED_LINK_VERSIONS } from "./cells.js";
export { LINK_ALPN, generateTlsCredentials } from "./tls.js";
export type { TlsCredentials } from "./tls.js";
export { DEFAULT_ANONYMOUS_RPC_LIMITS, RPC_BUDGETS, RpcError, RpcService, checkLinkRpcLimits, createLinkRpc, serviceId } from "./rpc.js";
export type {
  AnonymousRpcLimits,
  LinkRpc,
  LinkRpcOptions,
  LinkRpcStats,
  RpcBudget,
  RpcPeerClass,
  RequestOptions,
  RpcContext,
  RpcErrorKind,
  RpcHandler,
  RpcServiceName,
  ServeOptions,
} from "./rpc.js";
