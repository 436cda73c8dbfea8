/**
 * Stream tickets in the page: the node's own ticket reader
 * (node/src/stream/media-format.ts, docs/spec/streaming.md "Tickets"), which
 * needs no node:* module, with the page's error: a mistyped, cut or
 * non-canonically ended ticket is PlayerError "bad-ticket".
 */
import { readTicket, TICKET_FIX } from "../../../node/src/stream/media-format.js";
import type { StreamTicket } from "../../../node/src/stream/media-format.js";
import { PlayerError } from "./errors.js";

export { TICKET_PREFIX } from "../../../node/src/stream/media-format.js";
export type PageTicket = StreamTicket;

export function decodePageTicket(text: string): PageTicket {
  return readTicket(text, (why) => new PlayerError("bad-ticket", `${why}; ${TICKET_FIX}`));
}
