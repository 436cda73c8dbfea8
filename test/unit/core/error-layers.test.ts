/**
 * Every layer's error class on the common base: each kind has a category,
 * the class names its layer, and `Class.is` never matches an error of
 * another class, even one with the same kind ("malformed", "timeout", ...).
 */
import { describe, expect, it } from "vitest";
import { ERROR_CATEGORIES, PspError } from "../../../node/src/errors.js";
import { BaseError } from "../../../node/src/base/errors.js";
import { CryptoError } from "../../../node/src/crypto/errors.js";
import { WireError } from "../../../node/src/wire/errors.js";
import { LinkError } from "../../../node/src/link/errors.js";
import { RpcError } from "../../../node/src/link/rpc.js";
import { CircuitError } from "../../../node/src/onion/errors.js";
import { StreamRpcError } from "../../../node/src/onion/stream-rpc.js";
import { DirectoryError } from "../../../node/src/directory/errors.js";
import { DhtError } from "../../../node/src/dht/errors.js";
import { ChainError } from "../../../node/src/chain/errors.js";
import { CertificateError } from "../../../node/src/authority/certificate.js";
import { AuthorityError } from "../../../node/src/authority/service.js";
import { PresenceError } from "../../../node/src/presence/errors.js";
import { ClientError } from "../../../node/src/client/errors.js";
import { StreamError } from "../../../node/src/stream/errors.js";
import { OracleError } from "../../../node/src/stream/oracle-errors.js";
import { StreamMediaError } from "../../../node/src/stream/media-errors.js";
import { CommercialError } from "../../../node/src/commercial/errors.js";
import { NodeError } from "../../../node/src/node/config.js";
import { RewardsError } from "../../../node/src/rewards/errors.js";

interface LayerErrorClass {
  new (kind: never, message: string): PspError;
  readonly name: string;
  readonly layer: string;
  readonly kinds: readonly string[];
  categoryOf(kind: never): string;
  is(err: unknown, ...kinds: never[]): boolean;
}

const CLASSES: Record<string, LayerErrorClass> = {
  base: BaseError,
  crypto: CryptoError,
  wire: WireError,
  link: LinkError,
  "link rpc": RpcError,
  onion: CircuitError,
  "onion stream rpc": StreamRpcError,
  directory: DirectoryError,
  dht: DhtError,
  chain: ChainError,
  "authority certificates": CertificateError,
  authority: AuthorityError,
  presence: PresenceError,
  stream: StreamError,
  "stream media": StreamMediaError,
  oracle: OracleError,
  rewards: RewardsError,
  commercial: CommercialError,
  client: ClientError,
  node: NodeError,
};

const make = (cls: LayerErrorClass, kind: string): PspError => new cls(kind as never, `a ${kind} error`);

describe("layer error classes", () => {
  it.each(Object.entries(CLASSES))("%s: every kind has a category, and errors carry layer and qualified kind", (_label, cls) => {
    expect(cls.kinds.length).toBeGreaterThan(0);
    expect(new Set(cls.kinds).size).toBe(cls.kinds.length);
    for (const kind of cls.kinds) {
      const category = cls.categoryOf(kind as never);
      expect(ERROR_CATEGORIES, `${cls.name} "${kind}"`).toContain(category);
      const err = make(cls, kind);
      expect(err).toBeInstanceOf(PspError);
      expect(err.name).toBe(cls.name);
      expect([err.layer, err.kind, err.category, err.qualifiedKind]).toEqual([cls.layer, kind, category, `${cls.layer}/${kind}`]);
      expect(cls.is(err, kind as never)).toBe(true);
    }
  });

  it("Class.is matches only its own class, whatever the kind", () => {
    let sharedKinds = 0;
    for (const cls of Object.values(CLASSES)) {
      for (const other of Object.values(CLASSES)) {
        if (other === cls) continue;
        for (const kind of other.kinds) {
          const err = make(other, kind);
          expect(cls.is(err), `${cls.name}.is(${other.name} "${kind}")`).toBe(false);
          if (cls.kinds.includes(kind)) {
            sharedKinds++;
            expect(cls.is(err, kind as never), `${cls.name}.is(${other.name} "${kind}", "${kind}")`).toBe(false);
          }
        }
      }
    }
    // The collisions the layer check exists for ("malformed", "timeout", "bad-argument", ...) are there.
    expect(sharedKinds).toBeGreaterThan(10);
  });

  it("two classes of one layer never share a kind with different categories", () => {
    const byQualifiedKind = new Map<string, string>();
    for (const cls of Object.values(CLASSES)) {
      for (const kind of cls.kinds) {
        const qualified = `${cls.layer}/${kind}`;
        const category = cls.categoryOf(kind as never);
        expect(byQualifiedKind.get(qualified) ?? category, qualified).toBe(category);
        byQualifiedKind.set(qualified, category);
      }
    }
  });
});
