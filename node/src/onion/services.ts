/**
 * Small local services for diagnostics, tests and benchmarks.
 *
 * Owns two stream endpoints a node may offer by name: `echo` sends every
 * message back on its stream; `discard` swallows messages and counts them.
 * Neither keeps anything beyond counters; an echo whose reply queue is full
 * (the client stopped reading) ends the stream with END RESOURCELIMIT rather
 * than buffering.
 *
 * Trusts nothing in the messages.
 */
import { isPspError } from "../errors.js";
import { EndReason } from "./constants.js";
import type { LocalService } from "./types.js";

/** Counters a discard or echo service keeps. */
export interface ServiceCounters {
  streams: number;
  messages: number;
  bytes: number;
}

/** A service that sends each message back on the stream it came on. */
export function createEchoService(): { service: LocalService; counters: ServiceCounters } {
  const counters: ServiceCounters = { streams: 0, messages: 0, bytes: 0 };
  const service: LocalService = (stream) => {
    counters.streams++;
    return {
      onMessage(message) {
        counters.messages++;
        counters.bytes += message.length;
        try {
          stream.send(message);
        } catch (err) {
          if (!isPspError(err)) throw err;
          stream.end(EndReason.RESOURCELIMIT);
        }
      },
    };
  };
  return { service, counters };
}

/** A service that drops every message and counts it (the far end of throughput tests). */
export function createDiscardService(): { service: LocalService; counters: ServiceCounters } {
  const counters: ServiceCounters = { streams: 0, messages: 0, bytes: 0 };
  const service: LocalService = () => {
    counters.streams++;
    return {
      onMessage(message) {
        counters.messages++;
        counters.bytes += message.length;
      },
    };
  };
  return { service, counters };
}
