/**
 * Fuzz properties of node/src/crypto's parsers: identity strings, ntor replies
 * and key files either parse or fail with CryptoError; what still parses after
 * a mutation is self-consistent. Run briefly by test/unit/crypto/fuzz.test.ts
 * and at length by scripts/fuzz-wire.ts.
 */
import fc from "fast-check";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { CryptoError } from "../../node/src/crypto/errors.js";
import { formatIdentity, parseIdentity } from "../../node/src/crypto/identity.js";
import { decryptKeyFile, encryptKeyFile } from "../../node/src/crypto/keyfile.js";
import { ntorClientCreate, ntorClientFinish } from "../../node/src/crypto/ntor.js";
import { generateX25519KeyPair } from "../../node/src/crypto/x25519.js";
import { check, target, typedOnly, typedOnlyAsync, type FuzzTarget } from "./common.js";

const cryptoKind = (fn: () => unknown) => typedOnly([CryptoError], fn);

const signer = generateEd25519KeyPair();
const sampleIdentity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: signer.publicKey });
const onion = generateX25519KeyPair();
const { state: ntorState } = ntorClientCreate({ id: new Uint8Array(32), onionPublic: onion.publicKey });
let keyFile: Promise<string> | undefined;

export const cryptoTargets: FuzzTarget[] = [
  target("identity strings: random strings never parse; an edit of a valid one that parses is self-consistent", () =>
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 150 }).map((s) => ({ s, random: true })),
        fc
          .tuple(fc.nat(sampleIdentity.length), fc.string({ maxLength: 3 }), fc.nat(3))
          .map(([p, s, d]) => ({ s: sampleIdentity.slice(0, p) + s + sampleIdentity.slice(p + d), random: false })),
      ),
      ({ s, random }) => {
        const kind = cryptoKind(() => parseIdentity(s));
        if (random) check(kind !== undefined, `random string ${JSON.stringify(s)} parsed as an identity`);
        // An edit that still parses must be a genuinely different, self-consistent identity.
        else if (kind === undefined && s !== sampleIdentity) check(formatIdentity(parseIdentity(s)) === s, `${s} parsed but does not format back to itself`);
      },
    ),
  ),
  target(
    "ntor replies",
    () =>
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.constantFrom(32, 72), (reply, keyLength) => {
        check(cryptoKind(() => ntorClientFinish({ ...ntorState, reply, keyLength })) !== undefined, "a random ntor reply completed the handshake");
      }),
    0.05,
  ),
  target(
    "key files: random text and edits of a valid file",
    () => {
      keyFile ??= encryptKeyFile(signer.secretKey, "pw", { scrypt: { N: 1024 } });
      return fc.asyncProperty(fc.string({ maxLength: 400 }), fc.nat(), fc.string({ maxLength: 4 }), fc.nat(4), fc.boolean(), async (junk, p, s, d, edit) => {
        const json = await (keyFile as Promise<string>);
        const at = p % (json.length + 1);
        const text = edit ? json.slice(0, at) + s + json.slice(at + d) : junk;
        if (text === json) return;
        const kind = await typedOnlyAsync([CryptoError], () => decryptKeyFile(text, "pw"));
        // Only whitespace-level edits of the JSON may still open.
        if (!edit) check(kind !== undefined, "random text opened as a key file");
        else if (kind === undefined) check(JSON.stringify(JSON.parse(text)) === JSON.stringify(JSON.parse(json)), "an edited key file opened");
      });
    },
    0.005,
  ),
  target(
    "key files: any JSON value that is not a key file",
    () =>
      fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), async (value) => {
        const kind = await typedOnlyAsync([CryptoError], () => decryptKeyFile(JSON.stringify(value), "pw"));
        check(kind === "malformed-key-file", `a JSON ${typeof value} gave ${String(kind)}, not malformed-key-file`);
      }),
    0.05,
  ),
];
