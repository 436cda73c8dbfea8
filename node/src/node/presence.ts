/**
 * The presence services every onion node offers (docs/spec/presence.md):
 * "presence" and "introduce" (presence/presence-node.ts) and "rendezvous"
 * (presence/rendezvous-node.ts), wired to this node's DHT (co-signed
 * publication of presence records) and its consensus (the authorities that
 * access certificates are counted against).
 *
 * The DHT and the consensus start after the relay's services are
 * registered, so both are read late, through getters.
 *
 * Trusts the layers it wires.
 */
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { verifyAccessCertificateWithConsensus } from "../authority/certificate.js";
import type { AuthorityListing } from "../authority/certificate.js";
import { DhtError } from "../dht/errors.js";
import { publishCoSigned } from "../dht/proxy.js";
import type { DhtProxyNode } from "../dht/proxy.js";
import type { Logger } from "../log.js";
import type { LocalService } from "../onion/types.js";
import { createPresenceNode, INTRODUCE_SERVICE, PRESENCE_SERVICE } from "../presence/presence-node.js";
import type { PresenceNode, PresenceNodeLimits } from "../presence/presence-node.js";
import type { IntroducerCertificate } from "../presence/introduction.js";
import { createRendezvousNode, RENDEZVOUS_SERVICE } from "../presence/rendezvous-node.js";
import type { RendezvousNode, RendezvousNodeLimits } from "../presence/rendezvous-node.js";

/** Services a client may open on a one-hop circuit (public presence, direct introductions and rendezvous). */
export const PRESENCE_FIRST_HOP_SERVICES: readonly string[] = [PRESENCE_SERVICE, INTRODUCE_SERVICE, RENDEZVOUS_SERVICE];

export interface NodePresenceOptions {
  identity: Ed25519KeyPair;
  /** The node's DHT, once it runs. */
  dht: () => DhtProxyNode | undefined;
  /** The node's verified consensus, once it holds one. */
  consensus: () => AuthorityListing | undefined;
  flush: () => void;
  /** Overrides the consensus-based certificate check (networks without authorities). */
  verifyCertificate?: (cert: Uint8Array) => IntroducerCertificate;
  logger?: Logger;
  presenceLimits?: Partial<PresenceNodeLimits>;
  rendezvousLimits?: Partial<RendezvousNodeLimits>;
}

export interface NodePresence {
  readonly services: Record<string, LocalService>;
  readonly presence: PresenceNode;
  readonly rendezvous: RendezvousNode;
  close(): void;
}

export function startNodePresence(o: NodePresenceOptions): NodePresence {
  const presence = createPresenceNode({
    nodeKey: o.identity.publicKey,
    publish: async (record) => {
      const dht = o.dht();
      if (!dht) throw new DhtError("no-contacts", "this node's DHT is not running yet; retry shortly");
      return await publishCoSigned(dht, record, o.identity.secretKey, Date.now());
    },
    verifyCertificate: o.verifyCertificate ?? ((cert) => verifyAccessCertificateWithConsensus(cert, o.consensus(), { now: Date.now() })),
    flush: o.flush,
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.presenceLimits ? { limits: o.presenceLimits } : {}),
  });
  const rendezvous = createRendezvousNode({
    flush: o.flush,
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.rendezvousLimits ? { limits: o.rendezvousLimits } : {}),
  });
  return {
    services: { ...presence.services, [RENDEZVOUS_SERVICE]: rendezvous.service },
    presence,
    rendezvous,
    close() {
      presence.close();
      rendezvous.close();
    },
  };
}
