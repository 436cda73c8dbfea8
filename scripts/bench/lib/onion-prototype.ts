/**
 * The bare prototype the onion throughput target was set against
 * (docs/BENCHMARKS.md, onion), measured in the same run as PSP's own figures: a client and three
 * relays in this process over three TLS links on loopback, forwarding 32 KB
 * writes; with `onionCrypto`, the client runs three AES-128-CTR layers and
 * one SHA-256 pass over each write, each relay one AES-128-CTR pass, and the
 * last one a SHA-256 pass too. No cells, no circuits, no flow control: it
 * bounds what the full protocol can reach on this machine.
 *
 * Trusts: node:tls and node:crypto; it carries no PSP protocol.
 */
import { once } from "node:events";
import { createCipheriv, createHash } from "node:crypto";
import { connect as tlsConnect, createServer } from "node:tls";
import type { Server, TLSSocket } from "node:tls";
import { clientTlsOptions, serverTlsOptions } from "../../../node/src/link/tls.js";
import type { TlsCredentials } from "../../../node/src/link/tls.js";

export interface PrototypeChainOptions {
  /** Bytes to move (default 32 MiB). */
  bytes?: number;
  /** Six AES-128-CTR passes and two SHA-256 passes per byte (default true); false forwards bytes as they are. */
  onionCrypto?: boolean;
  host?: string;
}

const WRITE_BYTES = 32 * 1024;

function aesCtr() {
  return createCipheriv("aes-128-ctr", Buffer.alloc(16, 1), Buffer.alloc(16));
}

/** A TLS server on `host` and a free port, each accepted socket handed to `onSocket` (the chains' relays). */
export async function listen(creds: TlsCredentials, host: string, onSocket: (s: TLSSocket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(serverTlsOptions(creds), onSocket);
  server.listen(0, host);
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port };
}

/** A TLS connection to `host:port`, once its handshake is done. */
export async function dial(host: string, port: number): Promise<TLSSocket> {
  const socket = tlsConnect(clientTlsOptions(host, port));
  await once(socket, "secureConnect");
  return socket;
}

export interface PrototypeChainResult {
  /** Bytes per second counted at the last relay. */
  bps: number;
  /** CPU time of the process (user + system) from the first write to the last byte's arrival. */
  cpuMs: number;
  /** The main thread's event-loop utilization over the same span (1: it never waited for I/O or a timer). */
  eventLoopUtilization: number;
}

/** Moves `bytes` from a client through three forwarding relays, timed from the first write to the last byte at the last relay. */
export async function prototypeChainThroughput(creds: TlsCredentials, options: PrototypeChainOptions = {}): Promise<PrototypeChainResult> {
  const total = options.bytes ?? 32 * 1024 * 1024;
  const crypto = options.onionCrypto ?? true;
  const host = options.host ?? "127.0.0.1";
  const servers: Server[] = [];
  const sockets: TLSSocket[] = [];
  let received = 0;
  let finish!: (at: number) => void;
  const done = new Promise<number>((resolve) => (finish = resolve));
  try {
    const lastLayer = aesCtr();
    const lastDigest = createHash("sha256");
    const last = await listen(creds, host, (s) => {
      s.on("data", (chunk: Buffer) => {
        if (crypto) lastDigest.update(lastLayer.update(chunk));
        received += chunk.length;
        if (received >= total) finish(performance.now());
      });
    });
    servers.push(last.server);
    let nextPort = last.port;
    for (let i = 0; i < 2; i++) {
      const out = await dial(host, nextPort);
      sockets.push(out);
      const layer = aesCtr();
      const relay = await listen(creds, host, (s) => {
        s.on("data", (chunk: Buffer) => {
          if (!out.write(crypto ? layer.update(chunk) : chunk)) {
            s.pause();
            out.once("drain", () => s.resume());
          }
        });
      });
      servers.push(relay.server);
      nextPort = relay.port;
    }
    const client = await dial(host, nextPort);
    sockets.push(client);
    const layers = [aesCtr(), aesCtr(), aesCtr()];
    const digest = createHash("sha256");
    const chunk = Buffer.alloc(WRITE_BYTES, 7);
    const cpu = process.cpuUsage();
    const loop = performance.eventLoopUtilization();
    const started = performance.now();
    for (let sent = 0; sent < total; sent += chunk.length) {
      let bytes = chunk;
      if (crypto) {
        digest.update(bytes);
        for (const layer of layers) bytes = layer.update(bytes);
      }
      if (!client.write(bytes)) await once(client, "drain");
    }
    const ended = await done;
    const used = process.cpuUsage(cpu);
    const eventLoopUtilization = performance.eventLoopUtilization(loop).utilization;
    return { bps: (total * 1000) / (ended - started), cpuMs: (used.user + used.system) / 1000, eventLoopUtilization };
  } finally {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
  }
}
