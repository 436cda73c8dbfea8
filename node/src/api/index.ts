/**
 * The control API every PSP process serves: a fastify app on loopback with
 * `GET /v1/status`, `GET /metrics` (Prometheus) and JSON errors in one body,
 * `{ error: { kind, message, fix?, layer?, routes? } }` (errors.ts); layers
 * add their routes. This file only re-exports.
 *
 * Depends on: nothing in PSP (fastify, prom-client); the stream gateway
 * (stream-gateway.ts, a browser's viewer) on stream/.
 * Used by: node/ (the node process's API and metrics), directory/ (the
 * consensus routes).
 * Trust boundary: listens on loopback by default, for the operator; a bind
 * beyond loopback needs a bearer token (token.ts) on every route; fastify
 * checks each route's parameters against its schema, unknown routes get a
 * 404 not-found with the route list in error.routes.
 * Spec: docs/spec/node.md (the control API).
 */
export { DOCS_PREFIX, startControlApi } from "./server.js";
export { API_TOKEN_FILE, isLoopbackHost, loadOrCreateApiToken } from "./token.js";
export type { ControlApi, ControlApiOptions } from "./server.js";
export { gatewayChunkMessage, mountStreamGateway, STREAM_GATEWAY_ROUTE } from "./stream-gateway.js";
export type { StreamGateway, StreamGatewayOptions, StreamGatewayStats } from "./stream-gateway.js";
export { ERROR_RESPONSE_SCHEMA, ERROR_RESPONSES, errorAnswer, errorBody } from "./errors.js";
export type { ErrorAnswer, ErrorBody } from "./errors.js";
