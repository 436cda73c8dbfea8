/**
 * An in-memory DhtTransport: every node of a MemoryNetwork is a handler
 * reached by its contact address, in the same process. Used by the
 * simulator and the integration tests with the real DhtNode code.
 *
 * Nodes can be taken offline (requests reject with "unreachable") and an
 * interceptor can answer in a node's place (the simulator's adversaries).
 *
 * Trusts nothing it carries; it only counts and routes.
 */
import { DhtError } from "./errors.js";
import type { Contact } from "./contact.js";
import type { DhtRequest, DhtResponse, DhtTransport } from "./messages.js";

export type RequestHandler = (request: DhtRequest) => Promise<DhtResponse> | DhtResponse;

/** Answers in place of the addressed node when it returns a response. */
export type Interceptor = (contact: Contact, request: DhtRequest) => DhtResponse | undefined;

export class MemoryNetwork {
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly offline = new Set<string>();
  /** Requests delivered (or intercepted) since creation. */
  delivered = 0;
  interceptor: Interceptor | undefined;

  /** Attaches a node's handler under its address. */
  attach(address: string, handler: RequestHandler): void {
    this.handlers.set(address, handler);
  }

  detach(address: string): void {
    this.handlers.delete(address);
  }

  setOnline(address: string, online: boolean): void {
    if (online) this.offline.delete(address);
    else this.offline.add(address);
  }

  isOnline(address: string): boolean {
    return this.handlers.has(address) && !this.offline.has(address);
  }

  /** A transport for one node of this network. */
  readonly transport: DhtTransport = {
    request: async (contact: Contact, message: DhtRequest): Promise<DhtResponse> => {
      const handler = this.handlers.get(contact.address);
      if (handler === undefined || this.offline.has(contact.address)) {
        throw new DhtError("unreachable", `no node reachable at ${contact.address}`);
      }
      this.delivered++;
      const intercepted = this.interceptor?.(contact, message);
      if (intercepted !== undefined) return intercepted;
      return handler(message);
    },
  };
}
