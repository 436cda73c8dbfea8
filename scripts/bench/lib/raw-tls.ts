/**
 * The baseline every link and onion throughput figure is compared with: one
 * plain TLS 1.3 socket on loopback, both ends in this process, with the same
 * TLS settings links use and no PSP framing at all.
 */
import { once } from "node:events";
import { connect as tlsConnect, createServer } from "node:tls";
import type { TLSSocket } from "node:tls";
import { clientTlsOptions, serverTlsOptions } from "../../../node/src/link/tls.js";
import type { TlsCredentials } from "../../../node/src/link/tls.js";

export interface RawTlsOptions {
  /** Bytes to move (default 32 MiB). */
  bytes?: number;
  /** Size of each write (default 32 KiB); writes honour backpressure. */
  writeBytes?: number;
  host?: string;
}

/** Moves `bytes` through one plain TLS socket; returns bytes per second. */
export async function rawTlsThroughput(creds: TlsCredentials, options: RawTlsOptions = {}): Promise<number> {
  const bytes = options.bytes ?? 32 * 1024 * 1024;
  const host = options.host ?? "127.0.0.1";
  const server = createServer(serverTlsOptions(creds));
  server.listen(0, host);
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  let received = 0;
  const done = new Promise<number>((resolve) => {
    server.on("secureConnection", (s: TLSSocket) => {
      s.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received >= bytes) resolve(performance.now());
      });
    });
  });
  const client = tlsConnect(clientTlsOptions(host, port));
  await once(client, "secureConnect");
  const chunk = Buffer.alloc(options.writeBytes ?? 32 * 1024, 7);
  const started = performance.now();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!client.write(chunk)) await once(client, "drain");
  }
  const ended = await done;
  client.destroy();
  server.close();
  return (bytes * 1000) / (ended - started);
}
