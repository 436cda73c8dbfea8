/**
 * Throwaway TLS credentials and the TLS settings every link uses.
 *
 * Owns: generating a fresh self-signed ECDSA P-256 certificate (with
 * @peculiar/x509 over node's WebCrypto) and the TLS 1.3-only client and
 * server options. The certificate proves nothing and nobody checks it
 * (rejectUnauthorized is false): the link is bound to Ed25519 identities by
 * the AUTH cells over the TLS exporter (handshake.ts). A random subject and
 * serial keep certificates from being linkable across restarts.
 *
 * Trusts: node:tls and OpenSSL for the TLS session itself.
 */
import { KeyObject, randomBytes, webcrypto } from "node:crypto";
import type { ConnectionOptions, TlsOptions } from "node:tls";
import "reflect-metadata"; // @peculiar/x509 (via tsyringe) needs the Reflect metadata API at import time
import type * as X509 from "@peculiar/x509";

type X509Module = typeof X509;
let x509Module: Promise<X509Module> | undefined;

/** Loads @peculiar/x509 once, on first use: most processes never make a certificate. */
function loadX509(): Promise<X509Module> {
  if (!x509Module) {
    x509Module = import("@peculiar/x509");
  }
  return x509Module;
}

/** ALPN id: keeps a PSP link from being confused with any other TLS protocol on the port. */
export const LINK_ALPN = "psp-link/1";
/** ALPN id of a stream link (node/src/stream): media on the same port, handed to the stream handler. */
export const STREAM_ALPN = "psp-stream/1";

export interface TlsCredentials {
  /** PEM private key (PKCS#8). */
  key: string;
  /** PEM self-signed certificate. */
  cert: string;
}

/** A fresh self-signed certificate valid from yesterday for `validDays` days (default 365). */
export async function generateTlsCredentials(options: { validDays?: number } = {}): Promise<TlsCredentials> {
  const x509 = await loadX509();
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const day = 24 * 3600 * 1000;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomBytes(8).toString("hex").replace(/^[89a-f]/, "1"), // positive serial
      name: `CN=www.${randomBytes(6).toString("hex")}.net`,
      notBefore: new Date(now - day),
      notAfter: new Date(now + (options.validDays ?? 365) * day),
      signingAlgorithm: algorithm,
      keys,
    },
    webcrypto as unknown as Parameters<X509Module["X509CertificateGenerator"]["createSelfSigned"]>[1],
  );
  const key = KeyObject.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }) as string;
  return { key, cert: cert.toString("pem") };
}

/** Options shared by both ends: TLS 1.3 only, our ALPN id. */
const COMMON = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3", ALPNProtocols: [LINK_ALPN] } as const;

export function serverTlsOptions(credentials: TlsCredentials): TlsOptions {
  // The listener also offers STREAM_ALPN; a client offering only that one gets a stream link (manager.ts).
  return { ...COMMON, ALPNProtocols: [LINK_ALPN, STREAM_ALPN], key: credentials.key, cert: credentials.cert, requestCert: false };
}

export function clientTlsOptions(host: string, port: number): ConnectionOptions {
  // No certificate checks: identity comes from the AUTH cells. No SNI either, so
  // an observer learns nothing from the ClientHello about whom we dial.
  return { ...COMMON, host, port, rejectUnauthorized: false, servername: "" };
}

/** Client options of a stream link: as a link's, with STREAM_ALPN only. */
export function streamClientTlsOptions(host: string, port: number): ConnectionOptions {
  return { ...clientTlsOptions(host, port), ALPNProtocols: [STREAM_ALPN] };
}
