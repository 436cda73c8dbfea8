import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

/** Why the client refused or failed; every message names the fix. */
export type ClientErrorKind =
  /** An option passed to createPspClient (or a CLI flag) is missing or malformed. */
  | "bad-option"
  /** A devnet state.json, bootstrap list or consensus file is missing or malformed. */
  | "bad-bootstrap"
  /** No verified consensus could be had from any source before the deadline. */
  | "no-consensus"
  /** The operation needs the client's identity key, and none was given. */
  | "no-identity"
  /** No circuit could be built (or one in use was lost) through the consensus's nodes. */
  | "no-circuit"
  /** Too few authorities are listed in the consensus, or too few answered. */
  | "no-authorities"
  /** The client was closed. */
  | "closed";

/** Options and bootstrap files are the app's (or its user's) to fix; a network that does not answer yet is worth a retry. */
const CLIENT_CATEGORIES = {
  "bad-option": "config",
  "bad-bootstrap": "config",
  "no-consensus": "transient",
  "no-identity": "config",
  "no-circuit": "transient",
  "no-authorities": "transient",
  closed: "shutdown",
} as const satisfies KindCategories<ClientErrorKind>;

export class ClientError extends layerError<ClientErrorKind>("client", CLIENT_CATEGORIES) {}
