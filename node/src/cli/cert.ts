/**
 * `psp cert request | verify`: access certificates.
 *
 * `request` proves possession of the identity key to each authority over a
 * fresh challenge and assembles their endorsements into one certificate;
 * authorities are reached over TLS links (`--authorities`, see identity.ts),
 * or through the labelled in-process DEVNET PATH with `--devnet-keys`. `verify` runs the
 * same check every node runs, against the current on-chain authority set.
 * With `--json` both print one JSON object (certificate.ts's fields, times
 * as unix seconds); `request` shows its progress on stderr (progress.ts).
 */
import { readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { requestAccessCertificateWhenConfirmed } from "../authority/node.js";
import {
  DEFAULT_CERT_VALIDITY_SECONDS,
  MAX_CERT_BYTES,
  defaultCertificateThreshold,
  verifyAccessCertificate,
  type VerifiedCertificate,
} from "../authority/certificate.js";
import { ChainError } from "../chain/errors.js";
import {
  authorityOptions,
  authorityTransports,
  chainOptions,
  cliPki,
  identityNameOptions,
  loadIdentityKey,
  type AuthoritySourceOptions,
  type ChainOptions,
  type NameOptions,
} from "./identity.js";
import { errorSummary, printJson } from "./output.js";
import { withProgress } from "./progress.js";

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

/** A verified certificate as the JSON `--json` prints. */
function certificateJson(v: VerifiedCertificate) {
  return {
    identity: v.identity,
    identityId: v.identityId,
    notBefore: v.notBefore,
    notAfter: v.notAfter,
    chainId: v.chainId,
    registry: v.registry,
    authorities: v.authorities.length,
  };
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

  authorityOptions(identityNameOptions(chainOptions(cert.command("request").description("get an access certificate from a threshold of current authorities"))))
    .requiredOption("--key-file <file>", "the identity's encrypted key file")
    .option("--out <file>", "where to write the certificate (default <key-file>.cert)")
    .option("--threshold <n>", "authorities required (default: a majority of the current set)", positiveInteger)
    .option("--validity <seconds>", "certificate lifetime", positiveInteger, DEFAULT_CERT_VALIDITY_SECONDS)
    .option("--wait <seconds>", "keep asking while the authorities have not yet seen a fresh registration", positiveInteger, 15)
    .option("--json", "print one JSON object")
    .action(
      async (
        opts: NameOptions &
          ChainOptions &
          AuthoritySourceOptions & { keyFile: string; out?: string; threshold?: number; validity: number; wait: number; json?: boolean },
      ) => {
        const { secretKey, text } = await loadIdentityKey(opts.keyFile, opts);
        const { deployment, pki } = await cliPki(opts, false);
        let release = async (): Promise<void> => {};
        try {
          const set = await pki.currentAuthorities();
          const source = await authorityTransports(pki, opts);
          release = source.close;
          const threshold = opts.threshold ?? defaultCertificateThreshold(set.members.length);
          const issued = await withProgress(
            `certificate from ${threshold} of ${set.members.length} authorities`,
            async () =>
              await requestAccessCertificateWhenConfirmed({
                retryForMs: opts.wait * 1000,
                transports: source.transports,
                identity: text,
                identitySecretKey: secretKey,
                chainId: deployment.chainId,
                registry: deployment.contracts.IdentityRegistry.address,
                authorities: set.members.map((m) => m.nodeKey),
                threshold,
                validitySeconds: opts.validity,
              }),
            opts,
          );
          const out = opts.out ?? `${opts.keyFile}.cert`;
          await writeFile(out, issued.certificate);
          for (const r of issued.refusals) console.error(`warning: an authority refused: ${errorSummary(r)}`);
          if (opts.json) printJson({ ...certificateJson(issued.verified), file: out, bytes: issued.certificate.length });
          else console.log(`${describe(issued.verified)}\nwritten to   ${out} (${issued.certificate.length} bytes)`);
        } finally {
          await release();
          pki.close();
        }
      },
    );

  chainOptions(cert.command("verify").description("verify a certificate against the current on-chain authority set"))
    .argument("<file>", "certificate file")
    .option("--threshold <n>", "authorities required (default: a majority of the current set)", positiveInteger)
    .option("--json", "print one JSON object")
    .action(async (file: string, opts: ChainOptions & { threshold?: number; json?: boolean }) => {
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
        if (opts.json) printJson({ valid: true, ...certificateJson(verified) });
        else console.log(`valid\n${describe(verified)}`);
      } finally {
        pki.close();
      }
    });
}
