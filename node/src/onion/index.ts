/**
 * The onion layer: circuits, relay crypto, streams to named services, flow
 * control and rate limits, as I/O-free state machines (see relay.ts and
 * client.ts), plus path selection and an in-memory network for tests.
 */
export { CircuitError } from "./errors.js";
export type { CircuitErrorKind, CircuitErrorDetails } from "./errors.js";
export {
  DestroyReason,
  EndReason,
  destroyReasonName,
  endReasonName,
  DEFAULT_LIMITS,
  CIRCUIT_WINDOW_START,
  CIRCUIT_WINDOW_INCREMENT,
  STREAM_WINDOW_START,
  STREAM_WINDOW_INCREMENT,
  MAX_RELAY_EARLY,
  DEFAULT_MAX_CIRCUIT_LENGTH,
  DEFAULT_PATH_LENGTH,
  HOP_KEY_MATERIAL_LEN,
} from "./constants.js";
export { OnionRelay } from "./relay.js";
export type { OnionRelayOptions, RelayLimits } from "./relay.js";
export { OnionClient } from "./client.js";
export type { OnionClientOptions, ClientLimits, ClientCircuitInfo, ClientStreamInfo, ClientCircuitState } from "./client.js";
export { selectPath, networkKey } from "./path.js";
export type { PathNode, SelectPathOptions } from "./path.js";
export { RelayLayer, hopCryptoFromKeyMaterial, splitHopKeys } from "./relay-crypto.js";
export type { HopCrypto, HopKeys } from "./relay-crypto.js";
export { TokenBucket } from "./token-bucket.js";
export { OutboundScheduler } from "./scheduler.js";
export { FlowWindow } from "./flow-control.js";
export { OnionSim } from "./sim.js";
export type { SimRelay, CellInterceptor, OnionMachine } from "./sim.js";
export type {
  LinkInfo,
  NodeAddress,
  OnionAction,
  OnionEvent,
  LocalService,
  ServiceHandler,
  ServiceStream,
  RelayCommandContext,
  RelayCommandHandler,
} from "./types.js";
