/**
 * The page player's one error type: a `kind` a page can switch on (the same
 * names as the node's StreamMediaError where they mean the same:
 * "bad-ticket", "chunk-auth-failed", "malformed") and a message saying what
 * was wrong. Browser code: no node:* imports (this folder is bundled for the
 * page).
 */

export type PlayerErrorKind =
  /** The ticket is mistyped, cut or of an unknown version. */
  | "bad-ticket"
  /** A chunk does not open under the ticket's key (another key, stream or position, or altered). */
  | "chunk-auth-failed"
  /** A gateway message is not of the documented framing. */
  | "malformed"
  /** The gateway refused or failed (its error kind is in the message). */
  | "gateway"
  /** This browser cannot play MPEG-TS through Media Source Extensions. */
  | "unsupported";

export class PlayerError extends Error {
  override readonly name = "PlayerError";
  constructor(
    readonly kind: PlayerErrorKind,
    message: string,
  ) {
    super(message);
  }
}
