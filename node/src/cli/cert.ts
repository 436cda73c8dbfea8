/**
 * `psp cert request | verify`: access certificates.
 *
 * `request` proves possession of the identity key to each authority over a
 * fresh challenge and assembles their endorsements into one certificate
 * (DEVNET PATH for reaching authorities, see identity.ts). `verify` runs the
 * same check every node runs, against the current on-chain authority set.
 */
import { readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { requestAccessCertificate } from "../chain/authority.js";
import { DEFAULT_CERT_VALIDITY_SECONDS, MAX_CERT_BYTES, defaultCertificateThreshold, verifyAccessCertificate, type VerifiedCertificate } from "../chain/certificate.js";
import { ChainError } from "../chain/errors.js";
import { chainOptions, cliPki, defaultDevnetKeysDir, devnetAuthorityTransports, identityNameOptions, loadIdentityKey, type ChainOptions, type NameOptions } from "./identity.js";

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

function describe(v: VerifiedCertificate): string {
  return [
    `identity     ${v.identity}`,
    `identity id  ${v.identityId}`,
    `valid        ${new Date(v.notBefore * 1000).toISOString()} .. ${new Date(v.notAfter * 1000).toISOString()}`,
    `chain        ${v.chainId} (IdentityRegistry ${v.registry})`,
    `authorities  ${v.authorities.length} counted`,
  ].join("\n");
}

export function register(program: Command): void {
  const cert = program.command("cert").description("access certificates from the authority nodes");

  identityNameOptions(chainOptions(cert.command("request").description("get an access certificate from a threshold of current authorities (devnet path)")))
    .requiredOption("--key-file <file>", "the identity's encrypted key file")
    .option("--out <file>", "where to write the certificate (default <key-file>.cert)")
    .option("--threshold <n>", "authorities required (default: a majority of the current set)", positiveInteger)
    .option("--validity <seconds>", "certificate lifetime", positiveInteger, DEFAULT_CERT_VALIDITY_SECONDS)
    .option("--devnet-keys <dir>", "DEVNET PATH: authority keys written by `npm start`", defaultDevnetKeysDir)
    .action(
      async (opts: NameOptions & ChainOptions & { keyFile: string; out?: string; threshold?: number; validity: number; devnetKeys: string }) => {
        const { secretKey, text } = await loadIdentityKey(opts.keyFile, opts);
        const { deployment, pki } = await cliPki(opts, false);
        try {
          const set = await pki.currentAuthorities();
          const transports = await devnetAuthorityTransports(pki, opts.devnetKeys);
          const issued = await requestAccessCertificate({
            transports,
            identity: text,
            identitySecretKey: secretKey,
            chainId: deployment.chainId,
            registry: deployment.contracts.IdentityRegistry.address,
            authorities: set.members.map((m) => m.nodeKey),
            threshold: opts.threshold ?? defaultCertificateThreshold(set.members.length),
            validitySeconds: opts.validity,
          });
          const out = opts.out ?? `${opts.keyFile}.cert`;
          await writeFile(out, issued.certificate);
          for (const r of issued.refusals) console.error(`warning: an authority refused: [${r.kind}] ${r.message}`);
          console.log(`${describe(issued.verified)}\nwritten to   ${out} (${issued.certificate.length} bytes)`);
        } finally {
          pki.close();
        }
      },
    );

  chainOptions(cert.command("verify").description("verify a certificate against the current on-chain authority set"))
    .argument("<file>", "certificate file")
    .option("--threshold <n>", "authorities required (default: a majority of the current set)", positiveInteger)
    .action(
      async (file: string, opts: ChainOptions & { threshold?: number }) => {
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(await readFile(file));
        } catch (err) {
          throw new ChainError("bad-argument", `cannot read certificate ${file}`, { cause: err });
        }
        if (bytes.length > MAX_CERT_BYTES) throw new ChainError("bad-argument", `${file} is ${bytes.length} bytes: not a certificate`);
        const { deployment, pki } = await cliPki(opts, false);
        try {
          const set = await pki.currentAuthorities();
          const verified = verifyAccessCertificate(bytes, {
            now: Date.now(),
            authorities: set.members.map((m) => m.nodeKey),
            threshold: opts.threshold ?? defaultCertificateThreshold(set.members.length),
            chainId: deployment.chainId,
            registry: deployment.contracts.IdentityRegistry.address,
          });
          console.log(`valid\n${describe(verified)}`);
        } finally {
          pki.close();
        }
      },
    );
}
