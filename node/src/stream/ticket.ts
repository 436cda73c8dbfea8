/**
 * Stream tickets: the one string a producer hands a viewer (privately)
 * (docs/spec/streaming.md "Tickets").
 *
 * The layout, `pspstream1:` ‖ base64url(VERSION (1) = 1 ‖ stream id (16) ‖
 * stream key (32) ‖ landing identity (32) ‖ port (2) ‖ host length (1) ‖
 * host ‖ CHECK (4)), is written and read in media-format.ts, which the page
 * player shares; this file gives it the node's errors. The landing identity
 * says which consensus node the stream lives on; host and port are where to
 * dial it (the landing node proves that identity on the stream link, so a
 * wrong address cannot impersonate it).
 *
 * Trusts nothing in the string: a mistyped or cut ticket is "bad-ticket"
 * with a message saying so, never a wrong stream.
 */
import { readTicket, TICKET_FIX, ticketFieldsProblem, ticketText } from "./media-format.js";
import type { StreamTicket } from "./media-format.js";
import { StreamMediaError } from "./media-errors.js";

export { TICKET_PREFIX, TICKET_VERSION } from "./media-format.js";
export type { StreamTicket } from "./media-format.js";

/** The ticket text of `t`; "bad-argument" when a field cannot be written. */
export function encodeTicket(t: StreamTicket): string {
  const problem = ticketFieldsProblem(t);
  if (problem !== undefined) throw new StreamMediaError("bad-argument", problem);
  return ticketText(t);
}

/** The fields of ticket `text`; "bad-ticket", saying what is wrong, for anything a producer did not write. */
export function decodeTicket(text: string): StreamTicket {
  return readTicket(text, (why) => new StreamMediaError("bad-ticket", why, { fix: TICKET_FIX }));
}
