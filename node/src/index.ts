/**
 * The `peerstream-protocol` package: what an application imports.
 *
 *   import { createPspClient } from "peerstream-protocol";
 *
 * `createPspClient` (docs/CLIENT.md) bootstraps from a devnet, bootstrap
 * nodes or a consensus file and hides the assembly of consensus, circuits,
 * DHT and certificates. Errors are PspError subclasses with a `kind` to
 * switch on and a `category` (peer, refused, transient, config, bug,
 * shutdown) that says what to do about it whatever the layer; `errorCategory`
 * gives it for any thrown value. `createLogger` makes the logger its `logger`
 * option takes. The identity and record helpers apps need beside it are here
 * too; the layers themselves are reachable as subpaths
 * ("peerstream-protocol/onion", ".../dht", ...) for tools and nodes.
 */
export * from "./client/index.js";
export { PspError, errorCategory, isPspError } from "./errors.js";
export type { ErrorCategory, ErrorLayer } from "./errors.js";
export { createLogger, childLogger, watchLogEvents } from "./log.js";
export type { Logger, LogEvent, LogLevel } from "./log.js";
export { formatIdentity, parseIdentity } from "./crypto/identity.js";
export type { Identity, IdentityKind } from "./crypto/identity.js";
export { generateEd25519KeyPair } from "./crypto/ed25519.js";
export { encryptKeyFile, decryptKeyFile } from "./crypto/keyfile.js";
export { recordKey, signRecordAsOwner } from "./dht/record.js";
export type { DhtRecord, OwnerSignedRecord } from "./dht/record.js";
export { EndReason } from "./onion/constants.js";
export type { OnionCircuit, OnionStream } from "./onion/onion-client.js";
