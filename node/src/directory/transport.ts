/**
 * How the directory layer uses the link RPC (link/rpc.ts): the subset of its
 * interface this layer needs, and one typed request helper.
 *
 * Owns the mapping of transport failures (no link, timeout, peer closed) to
 * DirectoryError "unavailable" and of error answers to the DirectoryError
 * the remote handler raised. Trusts the RPC for framing and for the peer
 * identity of the link a request arrived on.
 */
import type { PeerAddress } from "../link/manager.js";
import type { LinkRpc } from "../link/rpc.js";
import { bytesToHexFast } from "./config.js";
import { DirectoryError } from "./errors.js";
import { DIRECTORY_SERVICE, MAX_VOTES_RESPONSE_BYTES, decodeDirectoryResponse, encodeDirectoryRequest, remoteError } from "./messages.js";
import type { DirectoryRequest, DirectoryResponse } from "./messages.js";

/**
 * The link RPC (link/rpc.ts createLinkRpc) as the directory layer uses it.
 * Its endpoint's maxMessageBytes bounds what a node can send: discovery nodes
 * and caches of a large network need it above the consensus size (brotli
 * bytes when compressed) and the vote size.
 */
export type DirectoryRpc = Pick<LinkRpc, "serve" | "request">;

export const DEFAULT_DIRECTORY_TIMEOUT_MS = 10_000;

/** Short printable name of a peer for messages. */
export function peerName(peer: PeerAddress): string {
  return `${bytesToHexFast(peer.identity).slice(0, 16)}@${peer.host}:${peer.port}`;
}

/**
 * Sends one directory request and decodes the answer. Throws DirectoryError:
 * the remote handler's kind for an error answer, "unavailable" when the peer
 * could not be reached or did not answer in time, "malformed"/"too-large"
 * for an answer that does not decode.
 */
export async function directoryRequest(rpc: DirectoryRpc, peer: PeerAddress, request: DirectoryRequest, options: { timeoutMs?: number } = {}): Promise<DirectoryResponse> {
  let answer: Uint8Array;
  try {
    answer = await rpc.request(peer, DIRECTORY_SERVICE, encodeDirectoryRequest(request), {
      timeoutMs: options.timeoutMs ?? DEFAULT_DIRECTORY_TIMEOUT_MS,
      maxResponseBytes: MAX_VOTES_RESPONSE_BYTES,
    });
  } catch (err) {
    if (err instanceof DirectoryError) throw err;
    const reason = err instanceof Error ? `${(err as { kind?: unknown }).kind ?? err.name}: ${err.message}` : String(err);
    throw new DirectoryError("unavailable", `${request.type} to ${peerName(peer)} failed (${reason})`, { cause: err });
  }
  const response = decodeDirectoryResponse(answer, MAX_VOTES_RESPONSE_BYTES);
  if (response.type === "error") throw remoteError(response, peerName(peer));
  return response;
}
