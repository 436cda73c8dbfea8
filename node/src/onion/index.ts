/**
 * The onion layer: circuits, relay crypto, streams to named services, flow
 * control and rate limits, as I/O-free state machines (see relay.ts and
 * client.ts), plus path selection and an in-memory network for tests; and
 * the runtime that drives them over real links (runtime.ts), the client's
 * circuit manager and its promise API (onion-client.ts).
 *
 * Depends on: base/ (the token bucket, code tables), crypto/ (ntor, X25519), wire/, link/.
 * Used by: dht/ and authority/ (their services over circuits), client/, node/.
 * Trust boundary: a relay trusts only the hop keys it agreed with ntor; cells
 * from links and payloads that do not verify are dropped or close the circuit
 * with a reason. Frozen vector: test/vectors/sealed-run.json.
 * Spec: docs/spec/onion.md.
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
export { selectPath, networkKey, isInternalNode, INTERNAL_FLAG } from "./path.js";
export type { PathNode, SelectPathOptions } from "./path.js";
export { RelayLayer, hopCryptoFromKeyMaterial, splitHopKeys } from "./relay-crypto.js";
export type { HopCrypto, HopKeys } from "./relay-crypto.js";
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
export { OnionDriver, CIRCUIT_CELL_COMMANDS } from "./runtime.js";
export type { OnionDriverOptions, OnionDriverStats, OnionDriverEvents } from "./runtime.js";
export { CircuitManager } from "./circuit-manager.js";
export type { CircuitManagerOptions, CircuitManagerEvents, ManagedCircuit } from "./circuit-manager.js";
export { createOnionClient, OnionClientHandle, OnionCircuit, OnionStream } from "./onion-client.js";
export type { CreateOnionClientOptions, BuildOptions, OnionStreamEvents } from "./onion-client.js";
export { createEchoService, createDiscardService } from "./services.js";
export type { ServiceCounters } from "./services.js";
export type { LinkFailureCause } from "./types.js";
