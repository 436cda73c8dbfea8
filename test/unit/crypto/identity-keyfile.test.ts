import { base58 } from "@scure/base";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { CryptoError } from "../../../node/src/crypto/errors.js";
import { decryptEvmKeystore, encryptEvmKeystore } from "../../../node/src/crypto/evm-keystore.js";
import { formatIdentity, isValidIdentity, parseIdentity } from "../../../node/src/crypto/identity.js";
import type { Identity } from "../../../node/src/crypto/identity.js";
import { decryptKeyFile, encryptKeyFile, parseKeyFile } from "../../../node/src/crypto/keyfile.js";
import { generateX25519KeyPair } from "../../../node/src/crypto/x25519.js";
import { kindOf as anyKindOf, kindOfAsync as anyKindOfAsync } from "../../helpers/index.js";

const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/);
const identityArb = fc.record({
  namespace: label,
  application: label,
  kind: fc.constantFrom("account" as const, "node" as const, "group" as const),
  publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
});

const kindOf = (fn: () => unknown) => anyKindOf(fn, CryptoError);
const kindOfAsync = (fn: () => Promise<unknown>) => anyKindOfAsync(fn, CryptoError);

describe("identity strings", () => {
  const sample: Identity = { namespace: "peerstream", application: "client", kind: "account", publicKey: generateEd25519KeyPair().publicKey };
  const text = formatIdentity(sample);

  it("round-trips any valid identity", () => {
    fc.assert(
      fc.property(identityArb, (id) => {
        const s = formatIdentity(id);
        const back = parseIdentity(s);
        expect(back.namespace).toBe(id.namespace);
        expect(back.application).toBe(id.application);
        expect(back.kind).toBe(id.kind);
        expect(toHex(back.publicKey)).toBe(toHex(id.publicKey));
      }),
      { numRuns: 1500 },
    );
    expect(text.startsWith("peerstream.client.account.")).toBe(true);
  });

  it("names what is wrong", () => {
    const key = text.split(".")[3] as string;
    expect(kindOf(() => parseIdentity(`peerstream.client.robot.${key}`))).toBe("unknown-identity-kind");
    expect(kindOf(() => parseIdentity(`peerstream.client.node.${key}`))).toBe("identity-checksum-mismatch");
    expect(kindOf(() => parseIdentity(`peerstream.server.account.${key}`))).toBe("identity-checksum-mismatch");
    expect(kindOf(() => parseIdentity(`peerstream.client.account.${key}0`))).toBe("bad-identity"); // '0' is not base58
    expect(kindOf(() => parseIdentity(`peerstream.client.account.${key.slice(0, -3)}`))).toBe("bad-identity");
    expect(kindOf(() => parseIdentity(`Peerstream.client.account.${key}`))).toBe("bad-identity");
    expect(kindOf(() => parseIdentity(`peerstream.client.account`))).toBe("bad-identity");
    expect(kindOf(() => parseIdentity(`a.b.c.d.e`))).toBe("bad-identity");
    expect(kindOf(() => parseIdentity("x".repeat(10_000)))).toBe("bad-identity");
    expect(kindOf(() => formatIdentity({ ...sample, namespace: "-bad" }))).toBe("bad-identity");
    expect(kindOf(() => formatIdentity({ ...sample, kind: "user" as "account" }))).toBe("unknown-identity-kind");
    expect(kindOf(() => formatIdentity({ ...sample, publicKey: new Uint8Array(31) }))).toBe("bad-key-length");
    expect(isValidIdentity(text)).toBe(true);
  });

  it("catches every single-character typo in the key part", () => {
    const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    const prefixLen = text.lastIndexOf(".") + 1;
    fc.assert(
      fc.property(fc.integer({ min: prefixLen, max: text.length - 1 }), fc.integer({ min: 0, max: 57 }), (pos, ch) => {
        const c = alphabet[ch] as string;
        fc.pre(c !== text[pos]);
        const typo = text.slice(0, pos) + c + text.slice(pos + 1);
        expect(["identity-checksum-mismatch", "bad-identity"]).toContain(kindOf(() => parseIdentity(typo)));
      }),
      { numRuns: 2000 },
    );
  });
  it("rejects the right shape with a wrong checksum", () => {
    expect(kindOf(() => parseIdentity(`peerstream.client.account.${base58.encode(new Uint8Array(36))}`))).toBe("identity-checksum-mismatch");
  });
});

describe("key files", () => {
  const fast = { scrypt: { N: 1024, r: 8, p: 1 } };

  it("round-trips Ed25519 and X25519 keys and binds the public key", async () => {
    const kp = generateEd25519KeyPair();
    const json = await encryptKeyFile(kp.secretKey, "correct horse", fast);
    const file = parseKeyFile(json);
    expect(file.publicKey).toBe(toHex(kp.publicKey));
    expect(file.kdf).toMatchObject({ name: "scrypt", N: 1024, r: 8, p: 1 });
    const opened = await decryptKeyFile(json, "correct horse");
    expect(toHex(opened.secretKey)).toBe(toHex(kp.secretKey));
    expect(opened.keyType).toBe("ed25519");

    const onion = generateX25519KeyPair();
    const onionJson = await encryptKeyFile(onion.secretKey, "pw", { ...fast, keyType: "x25519" });
    expect(toHex((await decryptKeyFile(onionJson, "pw")).publicKey)).toBe(toHex(onion.publicKey));
  });

  it("says bad-passphrase for a wrong passphrase or an edited header, malformed-key-file for broken files", async () => {
    const kp = generateEd25519KeyPair();
    const json = await encryptKeyFile(kp.secretKey, "pw", fast);
    expect(await kindOfAsync(() => decryptKeyFile(json, "pW"))).toBe("bad-passphrase");
    const file = JSON.parse(json) as Record<string, unknown>;
    const other = toHex(generateEd25519KeyPair().publicKey);
    expect(await kindOfAsync(() => decryptKeyFile({ ...file, publicKey: other }, "pw"))).toBe("bad-passphrase");
    expect(await kindOfAsync(() => decryptKeyFile({ ...file, keyType: "x25519" }, "pw"))).toBe("bad-passphrase");
    expect(await kindOfAsync(() => decryptKeyFile({ ...file, version: 2 }, "pw"))).toBe("malformed-key-file");
    expect(await kindOfAsync(() => decryptKeyFile("{not json", "pw"))).toBe("malformed-key-file");
    expect(await kindOfAsync(() => decryptKeyFile({ ...file, ciphertext: "zz" }, "pw"))).toBe("malformed-key-file");
    expect(await kindOfAsync(() => decryptKeyFile({ ...file, kdf: { ...(file["kdf"] as object), N: 2 ** 30 } }, "pw"))).toBe("bad-kdf-params");
    expect(await kindOfAsync(() => decryptKeyFile({ ...file, kdf: { ...(file["kdf"] as object), N: 1000 } }, "pw"))).toBe("bad-kdf-params");
    expect(await kindOfAsync(() => encryptKeyFile(kp.secretKey, "", fast))).toBe("bad-passphrase");
    expect(await kindOfAsync(() => encryptKeyFile(kp.secretKey, "pw", { scrypt: { N: 2 ** 9 } }))).toBe("bad-kdf-params");
  });
});

describe("EVM keystores (ethers)", () => {
  it("round-trips, and maps wrong passphrases and broken files to typed errors", async () => {
    const pk = `0x${"42".repeat(32)}` as const;
    const json = await encryptEvmKeystore(pk, "operator", { scryptN: 1024 });
    const account = await decryptEvmKeystore(json, "operator");
    expect(account.privateKey).toBe(pk);
    expect(account.address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(await kindOfAsync(() => decryptEvmKeystore(json, "wrong"))).toBe("bad-passphrase");
    expect(await kindOfAsync(() => decryptEvmKeystore("[]", "x"))).toBe("malformed-key-file");
    const huge = JSON.parse(json) as { Crypto: { kdfparams: { n: number } } };
    huge.Crypto.kdfparams.n = 2 ** 24;
    expect(await kindOfAsync(() => decryptEvmKeystore(JSON.stringify(huge), "operator"))).toBe("bad-kdf-params");
    expect(await kindOfAsync(() => encryptEvmKeystore("0x12" as `0x${string}`, "x"))).toBe("bad-key-length");
  });
});
