/**
 * Turns a verified consensus into the node list the onion layer's path
 * selection takes (onion/path.ts PathNode).
 *
 * Owns the mapping only: flag bits become flag names ("running", "guard", ...),
 * the advertised (consensus low-median) bandwidth becomes the selection
 * weight, and one address per node is picked (IPv4 first unless IPv6 is
 * preferred). An internal node (flag "internal") has no address in the
 * consensus: it becomes a node with host "" and port 0, which path selection
 * never puts first and which an EXTEND names by identity alone. Trusts its
 * input to come from verifyConsensus.
 */
import type { PathNode } from "../onion/path.js";
import { decodeAddress, isIPv4AddressBytes } from "./address.js";
import { NodeFlag, flagMask, flagNames } from "./config.js";
import type { NodeFlagName } from "./config.js";
import type { ConsensusEntry } from "./consensus.js";

export interface PathNodesOptions {
  /** Only nodes with all these flags; default ["onion"] (nodes that relay circuits). */
  requireFlags?: readonly NodeFlagName[];
  /** Pick an IPv6 address when a node has one (default false: IPv4 first). */
  preferIPv6?: boolean;
}

/** The consensus entries as path-selection input, in consensus order. */
export function consensusToPathNodes(consensus: { entries: readonly ConsensusEntry[] }, options: PathNodesOptions = {}): PathNode[] {
  const required = flagMask(options.requireFlags ?? ["onion"]);
  const wantV4 = !options.preferIPv6;
  const nodes: PathNode[] = [];
  for (const entry of consensus.entries) {
    if ((entry.flags & required) !== required) continue;
    const encoded = entry.encodedAddresses.find((a) => isIPv4AddressBytes(a) === wantV4) ?? entry.encodedAddresses[0];
    let host = "";
    let port = 0;
    if (encoded) ({ host, port } = decodeAddress(encoded));
    else if ((entry.flags & NodeFlag.internal) === 0) continue;
    const node: PathNode = { identity: entry.identity, onionKey: entry.onionKey, host, port, flags: flagNames(entry.flags), weight: entry.bandwidth };
    if (entry.family !== undefined) node.family = entry.family;
    nodes.push(node);
  }
  return nodes;
}
