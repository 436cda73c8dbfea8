/**
 * Facts about peer addresses that several layers use to key their limits.
 *
 * Owns only the loopback rule; trusts its input to be a host string as a
 * socket reports it.
 */

/**
 * True for loopback hosts (127.0.0.0/8, ::1, IPv4-mapped 127.x). Every
 * local process and every node of a loopback test network or devnet shares
 * such a host, so per-address limits would lump them together; they key by
 * address only for other hosts (per-link and per-node limits still apply).
 */
export function isLoopbackHost(host: string): boolean {
  return host.startsWith("127.") || host === "::1" || host.startsWith("::ffff:127.");
}
