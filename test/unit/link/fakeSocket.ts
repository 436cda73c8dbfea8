/**
 * Test double for the TLS socket a Link drives: records writes, lets a test
 * push bytes in, and can pretend to be full (write() false) to test
 * backpressure. Not a test file itself.
 */
import { EventEmitter } from "node:events";
import type { TLSSocket } from "node:tls";

export class FakeSocket extends EventEmitter {
  readonly writes: Buffer[] = [];
  ekm = Buffer.alloc(32, 0x42);
  /** When true, write() returns false and writableLength reports `fullLength`. */
  full = false;
  fullLength = 1 << 30;
  ended = false;
  destroyed = false;
  paused = false;
  remoteAddress = "127.0.0.1";
  remotePort = 9;

  setNoDelay(): this {
    return this;
  }
  exportKeyingMaterial(length: number): Buffer {
    return this.ekm.subarray(0, length);
  }
  get writableLength(): number {
    return this.full ? this.fullLength : 0;
  }
  write(chunk: Uint8Array): boolean {
    this.writes.push(Buffer.from(chunk));
    return !this.full;
  }
  /** Makes the socket writable again and fires 'drain'. */
  unblock(): void {
    this.full = false;
    this.emit("drain");
  }
  end(): this {
    if (!this.ended) {
      this.ended = true;
      queueMicrotask(() => this.destroy());
    }
    return this;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      queueMicrotask(() => this.emit("close"));
    }
    return this;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  /** All bytes written so far, and forget them. */
  takeWritten(): Buffer {
    const all = Buffer.concat(this.writes);
    this.writes.length = 0;
    return all;
  }
  asTls(): TLSSocket {
    return this as unknown as TLSSocket;
  }
}
