/**
 * The page's stream player (issue 18): a browser as a PSP viewer. Bundled
 * for the browser by esbuild (no node:* imports here); the dashboard mounts
 * attachStreamPlayer on a <video> element with the devnet's gateway URL and
 * the demo stream's ticket.
 */
export { attachStreamPlayer, gatewaySocketUrl } from "./player.js";
export type { StreamPlayer, StreamPlayerOptions, StreamPlayerState, StreamPlayerStats } from "./player.js";
export { ChunkOpener, parseGatewayChunk, pageEpochKey } from "./chunk.js";
export type { GatewayChunk, PageChunk } from "./chunk.js";
export { decodePageTicket } from "./ticket.js";
export type { PageTicket } from "./ticket.js";
export { PlayerError } from "./errors.js";
export type { PlayerErrorKind } from "./errors.js";
