/**
 * The client daemon's API (`psp client run`, docs/CLIENT.md "The client
 * daemon"): a fastify app on loopback that lets an app in any language do
 * what a TypeScript app does with createPspClient: announce presence, look
 * users up, open private channels, send on them (a send answers once the
 * peer acknowledged), and, over the WebSocket `/v1/events`, receive
 * introductions to accept or refuse, channels opening and closing, and every
 * message.
 *
 * Every request must carry the daemon's token (`Authorization: Bearer
 * <token>`; the WebSocket may pass `?token=` instead, since browsers cannot
 * set its headers): without it, 401. Bodies, parameters and socket messages
 * are checked against JSON schemas; a bad one is a 400 with a kind and the
 * daemon goes on serving. Errors are the one body of every PSP control API,
 * `{ error: { kind, message, fix?, layer? } }` (errors.ts). Every route
 * declares its response schema (fastify serializes through it: a property
 * it does not declare is dropped) and the shared error schema for 4xx/5xx.
 * It does not reuse the control API base (server.ts): that one serves
 * /metrics and /docs without a token on loopback.
 *
 * Trusts nothing a request carries; the session (client-session.ts) holds
 * the state.
 */
import fastifyWebsocket from "@fastify/websocket";
import Fastify from "fastify";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { RawData, WebSocket } from "ws";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { MAX_CHANNEL_BODY } from "../presence/messages.js";
import { ClientSession } from "./client-session.js";
import type { SessionClient } from "./client-session.js";
import { ApiError, ERROR_RESPONSE_SCHEMA, ERROR_RESPONSES, errorAnswer, retryAfterSeconds } from "./errors.js";
import { bearerToken, isLoopbackHost, tokenDigest, tokenMatches } from "./token.js";

export interface ClientDaemonOptions {
  client: SessionClient;
  /** The bearer token every request must carry. */
  token: string;
  /** Default 127.0.0.1: the daemon is for apps on this machine. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  logger?: Logger;
  /** How long an introduction waits for an app's answer (default 25 s). */
  decisionTimeoutMs?: number;
}

export interface ClientDaemon {
  url: string;
  session: ClientSession;
  close(): Promise<void>;
}

/** The smallest token `psp client run` accepts. */
export const MIN_TOKEN_LENGTH = 16;

const ID = { type: "string", pattern: "^[0-9a-f]{16}$" } as const;
const IDENTITY = { type: "string", minLength: 1, maxLength: 256 } as const;
const idParams = { type: "object", required: ["id"], properties: { id: ID } } as const;

const announceBody = {
  type: "object",
  additionalProperties: false,
  properties: { points: { type: "integer", minimum: 1, maximum: 8 }, public: { type: "boolean" } },
} as const;

const connectBody = {
  type: "object",
  additionalProperties: false,
  required: ["to"],
  properties: { to: IDENTITY, direct: { type: "boolean" }, timeoutMs: { type: "integer", minimum: 1000, maximum: 600_000 } },
} as const;

const messageBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    text: { type: "string", maxLength: MAX_CHANNEL_BODY },
    base64: { type: "string", maxLength: Math.ceil(MAX_CHANNEL_BODY / 3) * 4, pattern: "^[A-Za-z0-9+/]*={0,2}$" },
  },
} as const;

const int = { type: "integer" } as const;
const POINT = {
  type: "object",
  required: ["slot", "node", "state", "expiresAt", "stored", "introductions"],
  properties: { slot: int, node: { type: "string" }, state: { type: "string", enum: ["registering", "up", "lost"] }, expiresAt: int, stored: int, introductions: int },
} as const;
const FOUND_POINT = {
  type: "object",
  required: ["slot", "node", "public", "points", "period", "issuedAt"],
  properties: { slot: int, node: { type: "string" }, public: { type: "boolean" }, points: int, period: int, issuedAt: int },
} as const;
const CHANNEL = {
  type: "object",
  required: ["id", "peer", "role"],
  properties: { id: { type: "string" }, peer: { type: "string" }, role: { type: "string", enum: ["initiator", "responder"] } },
} as const;
const INTRODUCTION = {
  type: "object",
  required: ["id", "from", "certificateNotAfter"],
  properties: { id: { type: "string" }, from: { type: "string" }, certificateNotAfter: int },
} as const;
const STATUS = {
  type: "object",
  required: ["identity", "consensus", "presence", "channels", "introductions", "sockets"],
  properties: {
    identity: { type: "string", nullable: true },
    consensus: {
      type: "object",
      nullable: true,
      required: ["validAfter", "freshUntil", "validUntil", "nodes", "signers"],
      properties: { validAfter: int, freshUntil: int, validUntil: int, nodes: int, signers: int },
    },
    presence: {
      type: "object",
      required: ["announced", "points"],
      properties: { announced: { type: "boolean" }, points: { type: "array", items: POINT } },
    },
    channels: int,
    introductions: int,
    sockets: int,
  },
} as const;

/** A route's schema: its docs, what it validates, its 200 (or 201) body and the shared error body. */
function route(summary: string, description: string, ok: object, more: Record<string, unknown> = {}, okStatus = 200) {
  return { summary, description, tags: ["client"], ...more, response: { [okStatus]: ok, ...ERROR_RESPONSES } };
}

/** An app's answer to an introduction, sent on the events socket. */
interface SocketAnswer {
  type: "accept" | "refuse";
  id: string;
}

/** The request's token: its bearer header (token.ts), else `?token=` on the events socket. */
function bearer(request: FastifyRequest): string | undefined {
  const fromHeader = bearerToken(request.headers.authorization);
  if (fromHeader !== undefined) return fromHeader;
  // Browsers cannot set headers on a WebSocket: the events socket may carry the token in the query.
  const query = request.query as { token?: unknown } | undefined;
  return request.routeOptions.url === "/v1/events" && typeof query?.token === "string" ? query.token : undefined;
}

/** Checks one socket message: `{ "type": "accept" | "refuse", "id": "<introduction id>" }`. */
export function parseSocketAnswer(data: string): SocketAnswer {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch (err) {
    throw new ApiError("bad-request", `a socket message must be JSON: ${(err as Error).message}`, { cause: err });
  }
  const v = value as Partial<SocketAnswer> | null;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ApiError("bad-request", 'a socket message must be an object: { "type": "accept" | "refuse", "id": "<introduction id>" }');
  if (v.type !== "accept" && v.type !== "refuse") throw new ApiError("bad-request", 'type must be "accept" or "refuse"');
  if (typeof v.id !== "string" || !new RegExp(ID.pattern).test(v.id)) throw new ApiError("bad-request", "id must be an introduction id (16 hex digits) from an introduction event");
  const extra = Object.keys(v).filter((k) => k !== "type" && k !== "id");
  if (extra.length > 0) throw new ApiError("bad-request", `unknown field ${extra[0]}: a socket message has only type and id`);
  return { type: v.type, id: v.id };
}

/** A message body as bytes: `text` as UTF-8, or `base64`. */
function bodyBytes(body: { text?: string; base64?: string }): Uint8Array {
  const bytes = body.text !== undefined ? new TextEncoder().encode(body.text) : new Uint8Array(Buffer.from(body.base64 ?? "", "base64"));
  if (bytes.length > MAX_CHANNEL_BODY) throw new ApiError("bad-request", `a message is at most ${MAX_CHANNEL_BODY} bytes (this one is ${bytes.length}): split it`);
  return bytes;
}

function sendJson(socket: WebSocket, value: unknown, log: Logger): void {
  if (socket.readyState !== socket.OPEN) return;
  socket.send(JSON.stringify(value), (err) => {
    if (err) logFailure(log, err, "write to an events socket", "debug");
  });
}

/** Serves one app's events socket: the session's events out, its answers to introductions in. */
function serveEvents(session: ClientSession, socket: WebSocket, log: Logger): void {
  sendJson(socket, { type: "attached", identity: session.status().identity }, log);
  const detach = session.attach((event) => sendJson(socket, event, log));
  socket.on("close", detach);
  socket.on("error", (err) => logFailure(log, err, "events socket", "debug"));
  socket.on("message", (data: RawData) => {
    void answerFromSocket(session, socket, String(data), log);
  });
}

async function answerFromSocket(session: ClientSession, socket: WebSocket, data: string, log: Logger): Promise<void> {
  let answer: SocketAnswer | undefined;
  try {
    answer = parseSocketAnswer(data);
    if (answer.type === "refuse") {
      session.refuse(answer.id);
      sendJson(socket, { type: "refused", introduction: answer.id }, log);
    } else {
      const channel = await session.accept(answer.id);
      sendJson(socket, { type: "accepted", introduction: answer.id, channel: channel.id }, log);
    }
  } catch (err) {
    const { body } = errorAnswer(err);
    log.debug({ err }, `socket answer failed: ${body.error.message}`);
    sendJson(socket, { type: "error", ...(answer ? { introduction: answer.id } : {}), ...body }, log);
  }
}

/** JSON bodies, where an empty one is no body (many HTTP clients send the content type on every request). */
function parseJsonBody(_request: FastifyRequest, body: string | Buffer, done: (err: Error | null, value?: unknown) => void): void {
  const text = body.toString();
  if (text.trim() === "") return done(null, undefined);
  try {
    done(null, JSON.parse(text));
  } catch (err) {
    done(new ApiError("bad-request", `the body is not JSON: ${(err as Error).message}`, { cause: err }));
  }
}

/** A POST without a body means "no options" (fastify would check `undefined` against the object schema). */
async function emptyBodyIsEmptyObject(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

function registerRoutes(app: FastifyInstance, session: ClientSession, log: Logger): void {
  const pointsBody = { type: "object", required: ["points"], properties: { points: { type: "array", items: POINT } } } as const;
  app.get("/v1/status", { schema: route("The daemon's status", "Identity, held consensus, presence points, open channels, pending introductions, attached sockets.", STATUS) }, async () =>
    session.status(),
  );

  app.post<{ Body: { points?: number; public?: boolean } | undefined }>(
    "/v1/presence/announce",
    { schema: route("Announce presence", "Registers presence points (default 3) so others can introduce themselves; answers the points.", pointsBody, { body: announceBody }), preValidation: emptyBodyIsEmptyObject },
    async (request) => ({ points: await session.announce(request.body ?? {}) }),
  );
  app.delete("/v1/presence", { schema: route("Withdraw presence", "Stops renewing the presence points; answers the (now empty) points.", pointsBody) }, async () => {
    session.withdraw();
    return { points: [] };
  });

  app.get<{ Params: { identity: string } }>(
    "/v1/lookup/:identity",
    {
      schema: route(
        "Look a user up",
        "The user's live presence points from the DHT.",
        { type: "object", required: ["identity", "points"], properties: { identity: { type: "string" }, points: { type: "array", items: FOUND_POINT } } },
        { params: { type: "object", required: ["identity"], properties: { identity: IDENTITY } } },
      ),
    },
    async (request) => ({ identity: request.params.identity, points: await session.lookup(request.params.identity) }),
  );

  app.post<{ Body: { to: string; direct?: boolean; timeoutMs?: number } }>(
    "/v1/channels",
    { schema: route("Open a private channel", "Introduces us to `to` through a presence point; 201 with the channel once the peer accepted.", CHANNEL, { body: connectBody }, 201) },
    async (request, reply) => {
      const channel = await session.connect(request.body.to, request.body);
      return reply.status(201).send(channel);
    },
  );
  app.get(
    "/v1/channels",
    { schema: route("Open channels", "The channels open now.", { type: "object", required: ["channels"], properties: { channels: { type: "array", items: CHANNEL } } }) },
    async () => ({ channels: session.channels() }),
  );
  app.post<{ Params: { id: string }; Body: { text?: string; base64?: string } }>(
    "/v1/channels/:id/messages",
    {
      schema: route(
        "Send a message",
        "Sends `text` (UTF-8) or `base64` bytes on the channel; answers once the peer acknowledged.",
        { type: "object", required: ["delivered"], properties: { delivered: { type: "boolean" } } },
        { params: idParams, body: messageBody },
      ),
    },
    async (request) => {
      await session.send(request.params.id, bodyBytes(request.body));
      return { delivered: true };
    },
  );
  app.delete<{ Params: { id: string } }>(
    "/v1/channels/:id",
    { schema: route("Close a channel", "Closes the channel (the peer sees it closed).", { type: "object", required: ["closed"], properties: { closed: { type: "boolean" } } }, { params: idParams }) },
    async (request) => {
      session.closeChannel(request.params.id);
      return { closed: true };
    },
  );

  app.get(
    "/v1/introductions",
    {
      schema: route(
        "Pending introductions",
        "Introductions waiting for an answer (accept or refuse before they expire).",
        { type: "object", required: ["introductions"], properties: { introductions: { type: "array", items: INTRODUCTION } } },
      ),
    },
    async () => ({ introductions: session.introductions() }),
  );
  app.post<{ Params: { id: string } }>(
    "/v1/introductions/:id/accept",
    {
      schema: route("Accept an introduction", "Accepts it: answers the channel opened.", { type: "object", required: ["channel"], properties: { channel: CHANNEL } }, { params: idParams }),
    },
    async (request) => ({ channel: await session.accept(request.params.id) }),
  );
  app.post<{ Params: { id: string } }>(
    "/v1/introductions/:id/refuse",
    { schema: route("Refuse an introduction", "Refuses it: the introducer learns it was refused.", { type: "object", required: ["refused"], properties: { refused: { type: "boolean" } } }, { params: idParams }) },
    async (request) => {
      session.refuse(request.params.id);
      return { refused: true };
    },
  );

  app.get(
    "/v1/events",
    { websocket: true, schema: { summary: "Events socket", description: "WebSocket: introductions, channels, messages; answers to introductions in.", tags: ["client"] } },
    (socket) => serveEvents(session, socket, log),
  );
}

/** Starts the daemon's API for `client`; `close()` stops it (the client stays the caller's). */
export async function startClientDaemon(options: ClientDaemonOptions): Promise<ClientDaemon> {
  if (typeof options.token !== "string" || options.token.length < MIN_TOKEN_LENGTH)
    throw new ApiError("bad-request", `the daemon's token must be at least ${MIN_TOKEN_LENGTH} characters`);
  const log = childLogger(options.logger, "client-daemon");
  const session = new ClientSession(options.client, { logger: log, ...(options.decisionTimeoutMs ? { decisionTimeoutMs: options.decisionTimeoutMs } : {}) });
  const expected = tokenDigest(options.token);
  // Room for a base64 message of MAX_CHANNEL_BODY bytes and its JSON.
  // Strict schemas: no type coercion, and an unknown field is an error rather than silently dropped.
  const app = Fastify({ logger: false, bodyLimit: 128 * 1024, ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });
  app.setErrorHandler((err, request, reply: FastifyReply) => {
    const { status, body } = errorAnswer(err);
    const retryAfter = retryAfterSeconds(err);
    if (retryAfter !== undefined && status === 503) void reply.header("retry-after", String(retryAfter));
    if (status >= 500) log.warn({ err, route: request.url }, `${request.method} ${request.url} failed: ${body.error.message}`);
    else log.debug({ kind: body.error.kind, route: request.url }, `${request.method} ${request.url}: ${body.error.message}`);
    void reply.status(status).send(body);
  });
  app.addSchema(ERROR_RESPONSE_SCHEMA);
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, parseJsonBody);
  app.setNotFoundHandler((request, reply) => {
    const { status, body } = errorAnswer(new ApiError("not-found", `no route ${request.method} ${request.url.split("?")[0]}: see docs/CLIENT.md for the daemon's routes`));
    void reply.status(status).send(body);
  });
  // Before the token check: the plugin's own onRequest hook marks upgrade requests, so a refused one has its socket closed.
  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });
  app.addHook("onRequest", async (request, reply) => {
    if (tokenMatches(bearer(request), expected)) return;
    const { status, body } = errorAnswer(
      new ApiError("unauthorized", "send the daemon's token as Authorization: Bearer <token> (psp client run printed it, or wrote it to its --token-file)"),
    );
    return reply.status(status).send(body);
  });
  registerRoutes(app, session, log);

  const host = options.host ?? "127.0.0.1";
  if (!isLoopbackHost(host)) log.warn({ host }, "the daemon listens beyond loopback: its token and messages travel unencrypted");
  try {
    await app.listen({ host, port: options.port });
  } catch (err) {
    session.close();
    await app.close();
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE")
      throw new ApiError("conflict", `${host}:${options.port} is taken (another daemon?): pass another --port, or 0 for a free one`, { cause: err });
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  log.info({ url }, "client daemon listening");
  return {
    url,
    session,
    close: async () => {
      session.close();
      await app.close();
    },
  };
}
