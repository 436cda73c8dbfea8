/**
 * The bare prototype the onion throughput target was set against
 * (docs/BENCHMARKS.md, onion), measured in the same run as PSP's own figures: a client and three
 * relays in this process over three TLS links on loopback, forwarding 32 KB
 * writes; with `onionCrypto`, the client runs three AES-128-CTR layers and
 * one SHA-256 pass over each write, each relay one AES-128-CTR pass, and the
 * last one a SHA-256 pass too. No cells, no circuits, no flow control: it
 * bounds what the full protocol can reach on this machine. Its relay chain
 * (`startRelayChain`) also carries the cell prototype (onion-cell-prototype.ts).
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

async function listen(creds: TlsCredentials, host: string, onSocket: (s: TLSSocket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(serverTlsOptions(creds), onSocket);
  server.listen(0, host);
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port };
}

async function dial(host: string, port: number): Promise<TLSSocket> {
  const socket = tlsConnect(clientTlsOptions(host, port));
  await once(socket, "secureConnect");
  return socket;
}

/** A chain of three relays on loopback TLS and the client's connection to the first. */
export interface RelayChain {
  client: TLSSocket;
  close(): void;
}

/**
 * Starts the three relays of a chain, last first, and connects the client.
 * The last relay hands what it reads to `deliver`. Each relay before it passes
 * what it reads through its hop's `forward` (hop 0 is the first relay) and
 * writes the result, if any, to the next, pausing its reading while that
 * link's buffer is full: TCP's back-pressure is a chain's only flow control.
 */
export async function startRelayChain(
  creds: TlsCredentials,
  host: string,
  deliver: (chunk: Buffer) => void,
  forwarder: (hop: number) => (chunk: Buffer) => Uint8Array | undefined,
): Promise<RelayChain> {
  const servers: Server[] = [];
  const sockets: TLSSocket[] = [];
  const close = (): void => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
  };
  try {
    const last = await listen(creds, host, (s) => s.on("data", deliver));
    servers.push(last.server);
    let nextPort = last.port;
    for (let hop = 1; hop >= 0; hop--) {
      const out = await dial(host, nextPort);
      sockets.push(out);
      const forward = forwarder(hop);
      const relay = await listen(creds, host, (s) => {
        s.on("data", (chunk: Buffer) => {
          const bytes = forward(chunk);
          if (bytes && !out.write(bytes)) {
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
    return { client, close };
  } catch (err) {
    close();
    throw err;
  }
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
  let received = 0;
  let finish!: (at: number) => void;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const lastLayer = aesCtr();
  const lastDigest = createHash("sha256");
  const chain = await startRelayChain(
    creds,
    host,
    (chunk) => {
      if (crypto) lastDigest.update(lastLayer.update(chunk));
      received += chunk.length;
      if (received >= total) finish(performance.now());
    },
    () => {
      const layer = aesCtr();
      return (chunk) => (crypto ? layer.update(chunk) : chunk);
    },
  );
  try {
    const client = chain.client;
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
    chain.close();
  }
}
