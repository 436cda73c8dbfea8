/**
 * The directory protocol's messages, carried by the link RPC (service
 * "directory"): every request is one canonical CBOR map with a type field
 * `t`, and every answer is one canonical CBOR map too.
 *
 * Owns the byte layouts, the per-message size limits and the mapping of
 * refusals to typed answers: a handler that refuses something answers
 * `{ t: "error", kind, msg }` with a DirectoryErrorKind, which the requester
 * turns back into a DirectoryError, so both ends switch on the same kinds.
 * Trusts nothing it decodes; the documents inside (descriptor, vote,
 * signature, consensus) are checked by their own modules.
 */
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { DEFAULT_LIMITS, MAX_DISCOVERY_NODES } from "./config.js";
import { DirectoryError } from "./errors.js";
import type { DirectoryErrorKind } from "./errors.js";
import { fromWire, malformed, readArray, readBytes, readMap, readUint } from "./fields.js";

/** The link RPC service name every directory message travels under. */
export const DIRECTORY_SERVICE = "directory";

/** Framing overhead allowed on top of the largest document a message carries. */
const ENVELOPE_SLACK = 1024;
/** Largest request: a vote (16 MiB) plus framing. */
export const MAX_DIRECTORY_REQUEST_BYTES = DEFAULT_LIMITS.maxVoteBytes + ENVELOPE_SLACK;
/** Largest answer: the votes of a whole discovery set is bounded separately; one consensus plus framing. */
export const MAX_DIRECTORY_RESPONSE_BYTES = DEFAULT_LIMITS.maxConsensusBytes + ENVELOPE_SLACK;
/** Largest votes answer (several votes): 4 full-size votes; a real set's votes are far smaller. */
export const MAX_VOTES_RESPONSE_BYTES = 4 * DEFAULT_LIMITS.maxVoteBytes + ENVELOPE_SLACK;

const ERROR_KINDS: readonly DirectoryErrorKind[] = [
  "malformed",
  "too-large",
  "bad-signature",
  "stale",
  "future-dated",
  "expired",
  "not-registered",
  "under-signed",
  "unknown-signer",
  "wrong-period",
  "conflicting-vote",
  "insufficient-votes",
  "bad-config",
  "not-served",
  "unauthorized",
  "unavailable",
];

export type DirectoryRequest =
  /** A node reports its signed descriptor (to a discovery node). */
  | { type: "publish-descriptor"; descriptor: Uint8Array }
  /**
   * Ask for the latest consensus. `compressed`: answer brotli bytes.
   * `ifNoneMatch`: SHA-256 of the document the asker holds; the answer is
   * "not-modified" when the served document is byte-identical.
   */
  | { type: "fetch-consensus"; compressed: boolean; ifNoneMatch?: Uint8Array }
  /** Ask a discovery node for the votes it holds for a round, by voter (all when absent). */
  | { type: "fetch-votes"; validAfter: number; voters?: Uint8Array[] }
  /** A discovery node pushes its vote to another. */
  | { type: "push-vote"; vote: Uint8Array }
  /** A discovery node pushes its consensus signature message (consensus.ts) to another. */
  | { type: "push-signature"; signature: Uint8Array }
  /**
   * The node-only view: the signed descriptors of the internal nodes the
   * answering node's consensus lists (where they listen). Answered only over
   * a link whose peer proved a known node identity; others get "unauthorized".
   */
  | { type: "fetch-internal" };

export type DirectoryResponse =
  /** The request was taken; `accepted` false when it changed nothing (a copy, an older descriptor). */
  | { type: "ok"; accepted: boolean }
  | { type: "consensus"; compressed: boolean; document: Uint8Array }
  | { type: "not-modified" }
  /** This node holds no live consensus (yet). */
  | { type: "no-consensus" }
  | { type: "votes"; votes: Uint8Array[] }
  /** The node-only view for the consensus valid from `validAfter`: internal nodes' signed descriptors, one per node. */
  | { type: "internal"; validAfter: number; descriptors: Uint8Array[] }
  | { type: "error"; kind: DirectoryErrorKind; message: string };

const REQUEST_TAGS = {
  "publish-descriptor": "desc",
  "fetch-consensus": "cons",
  "fetch-votes": "votes",
  "push-vote": "vote",
  "push-signature": "sig",
  "fetch-internal": "int",
} as const;

export function encodeDirectoryRequest(request: DirectoryRequest): Uint8Array {
  let map: Record<string, unknown>;
  switch (request.type) {
    case "publish-descriptor":
      map = { t: REQUEST_TAGS[request.type], doc: request.descriptor };
      break;
    case "fetch-consensus":
      map = { t: REQUEST_TAGS[request.type], br: request.compressed, ...(request.ifNoneMatch ? { inm: request.ifNoneMatch } : {}) };
      break;
    case "fetch-votes":
      map = { t: REQUEST_TAGS[request.type], va: request.validAfter, ...(request.voters ? { voters: request.voters } : {}) };
      break;
    case "push-vote":
      map = { t: REQUEST_TAGS[request.type], doc: request.vote };
      break;
    case "push-signature":
      map = { t: REQUEST_TAGS[request.type], doc: request.signature };
      break;
    case "fetch-internal":
      map = { t: REQUEST_TAGS[request.type] };
      break;
  }
  return fromWire("directory request", () => encodeCanonical(map));
}

function readDoc(value: unknown, what: string, maxBytes: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length === 0) throw malformed(`${what} must be a non-empty byte string`);
  if (value.length > maxBytes) throw new DirectoryError("too-large", `${what} is ${value.length} bytes; the limit is ${maxBytes}`);
  return value;
}

/** Decodes a request. Throws DirectoryError "malformed" or "too-large". */
export function decodeDirectoryRequest(bytes: Uint8Array): DirectoryRequest {
  if (!(bytes instanceof Uint8Array)) throw malformed("directory request must be bytes");
  if (bytes.length > MAX_DIRECTORY_REQUEST_BYTES) throw new DirectoryError("too-large", `directory request of ${bytes.length} bytes exceeds ${MAX_DIRECTORY_REQUEST_BYTES}`);
  const value = fromWire("directory request", () => decodeCanonical(bytes, { maxBytes: MAX_DIRECTORY_REQUEST_BYTES, maxDepth: 2 }));
  const tag = (value as { t?: unknown } | null)?.t;
  switch (tag) {
    case "desc": {
      const m = readMap(value, "publish-descriptor", ["t", "doc"]);
      return { type: "publish-descriptor", descriptor: readDoc(m["doc"], "descriptor", DEFAULT_LIMITS.maxDescriptorBytes) };
    }
    case "cons": {
      const m = readMap(value, "fetch-consensus", ["t", "br"], ["inm"]);
      if (typeof m["br"] !== "boolean") throw malformed("fetch-consensus br must be a boolean");
      const request: DirectoryRequest = { type: "fetch-consensus", compressed: m["br"] };
      if (m["inm"] !== undefined) request.ifNoneMatch = readBytes(m["inm"], "fetch-consensus inm", 32);
      return request;
    }
    case "votes": {
      const m = readMap(value, "fetch-votes", ["t", "va"], ["voters"]);
      const request: DirectoryRequest = { type: "fetch-votes", validAfter: readUint(m["va"], "fetch-votes va") };
      if (m["voters"] !== undefined) request.voters = readArray(m["voters"], "fetch-votes voters", MAX_DISCOVERY_NODES, 1).map((v, i) => readBytes(v, `fetch-votes voter #${i}`, 32));
      return request;
    }
    case "vote": {
      const m = readMap(value, "push-vote", ["t", "doc"]);
      return { type: "push-vote", vote: readDoc(m["doc"], "vote", DEFAULT_LIMITS.maxVoteBytes) };
    }
    case "sig": {
      const m = readMap(value, "push-signature", ["t", "doc"]);
      return { type: "push-signature", signature: readDoc(m["doc"], "consensus signature", 256) };
    }
    case "int":
      readMap(value, "fetch-internal", ["t"]);
      return { type: "fetch-internal" };
    default:
      throw malformed(`unknown directory request type ${JSON.stringify(typeof tag === "string" ? tag.slice(0, 32) : tag)}`);
  }
}

export function encodeDirectoryResponse(response: DirectoryResponse): Uint8Array {
  let map: Record<string, unknown>;
  switch (response.type) {
    case "ok":
      map = { t: "ok", acc: response.accepted };
      break;
    case "consensus":
      map = { t: "cons", br: response.compressed, doc: response.document };
      break;
    case "not-modified":
      map = { t: "same" };
      break;
    case "no-consensus":
      map = { t: "none" };
      break;
    case "votes":
      map = { t: "votes", votes: response.votes };
      break;
    case "internal":
      map = { t: "int", va: response.validAfter, descs: response.descriptors };
      break;
    case "error":
      // Messages are for operators; cap them so an error answer stays small.
      map = { t: "err", kind: response.kind, msg: response.message.slice(0, 512) };
      break;
  }
  return fromWire("directory response", () => encodeCanonical(map));
}

/** Decodes an answer. Throws DirectoryError "malformed" or "too-large"; an error answer is returned, not thrown. */
export function decodeDirectoryResponse(bytes: Uint8Array, maxBytes: number = MAX_VOTES_RESPONSE_BYTES): DirectoryResponse {
  if (!(bytes instanceof Uint8Array)) throw malformed("directory response must be bytes");
  if (bytes.length > maxBytes) throw new DirectoryError("too-large", `directory response of ${bytes.length} bytes exceeds ${maxBytes}`);
  const value = fromWire("directory response", () => decodeCanonical(bytes, { maxBytes, maxDepth: 2 }));
  const tag = (value as { t?: unknown } | null)?.t;
  switch (tag) {
    case "ok": {
      const m = readMap(value, "ok answer", ["t", "acc"]);
      if (typeof m["acc"] !== "boolean") throw malformed("ok answer acc must be a boolean");
      return { type: "ok", accepted: m["acc"] };
    }
    case "cons": {
      const m = readMap(value, "consensus answer", ["t", "br", "doc"]);
      if (typeof m["br"] !== "boolean") throw malformed("consensus answer br must be a boolean");
      return { type: "consensus", compressed: m["br"], document: readDoc(m["doc"], "consensus document", DEFAULT_LIMITS.maxConsensusBytes) };
    }
    case "same":
      readMap(value, "not-modified answer", ["t"]);
      return { type: "not-modified" };
    case "none":
      readMap(value, "no-consensus answer", ["t"]);
      return { type: "no-consensus" };
    case "votes": {
      const m = readMap(value, "votes answer", ["t", "votes"]);
      return { type: "votes", votes: readArray(m["votes"], "votes answer votes", MAX_DISCOVERY_NODES).map((v, i) => readDoc(v, `vote #${i}`, DEFAULT_LIMITS.maxVoteBytes)) };
    }
    case "int": {
      const m = readMap(value, "internal answer", ["t", "va", "descs"]);
      return {
        type: "internal",
        validAfter: readUint(m["va"], "internal answer va"),
        descriptors: readArray(m["descs"], "internal answer descs", DEFAULT_LIMITS.maxNodes).map((d, i) => readDoc(d, `internal descriptor #${i}`, DEFAULT_LIMITS.maxDescriptorBytes)),
      };
    }
    case "err": {
      const m = readMap(value, "error answer", ["t", "kind", "msg"]);
      const kind = m["kind"];
      if (typeof kind !== "string" || !(ERROR_KINDS as readonly string[]).includes(kind)) throw malformed("error answer kind is not a directory error kind");
      if (typeof m["msg"] !== "string") throw malformed("error answer msg must be a string");
      return { type: "error", kind: kind as DirectoryErrorKind, message: m["msg"].slice(0, 512) };
    }
    default:
      throw malformed(`unknown directory response type ${JSON.stringify(typeof tag === "string" ? tag.slice(0, 32) : tag)}`);
  }
}

/** The error answer for a refusal: DirectoryError keeps its kind; anything else is reported as "malformed" without internals. */
export function errorResponse(err: unknown): DirectoryResponse {
  if (err instanceof DirectoryError) return { type: "error", kind: err.kind, message: err.message };
  return { type: "error", kind: "malformed", message: "request could not be processed" };
}

/** Turns an error answer back into the DirectoryError the remote handler raised. */
export function remoteError(response: Extract<DirectoryResponse, { type: "error" }>, peer: string): DirectoryError {
  return new DirectoryError(response.kind, `${peer} refused: ${response.message}`);
}
