/**
 * The plugin interface of commercial nodes (docs/spec/commercial.md
 * "Plugins"): what an application's developer writes to serve a custom
 * protocol on its commercial nodes, and the loader that checks a module
 * against it.
 *
 * A plugin is an ES module that exports `services`, an object mapping
 * service names ([a-z0-9-]{1,32}, the names published on chain) to one of:
 *   { mode: "request", handle(request, ctx) => Uint8Array | Promise<Uint8Array> }
 *       one response per request (the node frames, caps and rate-limits them);
 *   { mode: "duplex", open(io, ctx) => { onMessage(msg), onEnd?() } }
 *       a message stream both ways (io.send / io.end), e.g. subscriptions.
 * Either may set `requiresIdentity: true` (the client must present an access
 * certificate for an identity of this application) and `maxMessageBytes`.
 * Throw `new CommercialError("refused", ...)` (or any PspError) from a
 * handler to refuse a request with a typed reason; anything else is
 * "handler-failed" and its text stays on the node.
 *
 * Owns the shapes and the checks; trusts the module's code once loaded (it
 * runs in the node's process: operators load only plugins they trust).
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { CommercialError } from "./errors.js";
import { SERVICE_PATTERN } from "./messages.js";
import type { ServiceMode } from "./messages.js";

/** What a service learns about a request: never the client's address. */
export interface CommercialContext {
  /** "<namespace>.<application>" of the application served. */
  readonly application: string;
  readonly service: string;
  /** The client's identity string when it proved one (requiresIdentity), else undefined. */
  readonly identity: string | undefined;
  /** The key rate limits are kept under: the identity, or "circuit:<local serial>" for an anonymous client. */
  readonly client: string;
}

export interface RequestService {
  mode: "request";
  handle(request: Uint8Array, ctx: CommercialContext): Uint8Array | Promise<Uint8Array>;
  requiresIdentity?: boolean;
  /** Largest request and response (default: the node's limit). */
  maxMessageBytes?: number;
}

/** The node side of a duplex stream, handed to the service. */
export interface DuplexIo {
  /** Queues one message to the client; throws CommercialError "closed" or "too-large". */
  send(message: Uint8Array): void;
  /** Ends the stream. */
  end(): void;
}

export interface DuplexSession {
  onMessage(message: Uint8Array): void;
  onEnd?(): void;
}

export interface DuplexService {
  mode: "duplex";
  open(io: DuplexIo, ctx: CommercialContext): DuplexSession;
  requiresIdentity?: boolean;
  maxMessageBytes?: number;
}

export type CommercialService = RequestService | DuplexService;

/** A loaded plugin: its services by name. */
export interface CommercialPlugin {
  services: Record<string, CommercialService>;
}

/** Checks a module's exports against the interface; throws CommercialError "bad-plugin" naming the problem. */
export function checkPlugin(mod: unknown, source = "plugin"): CommercialPlugin {
  const services = (mod as { services?: unknown } | null)?.services;
  if (typeof services !== "object" || services === null || Array.isArray(services)) {
    throw new CommercialError("bad-plugin", `${source} must export services: { "<name>": { mode: "request", handle } | { mode: "duplex", open } }`);
  }
  const names = Object.keys(services);
  if (names.length === 0) throw new CommercialError("bad-plugin", `${source} exports no services`);
  const out: Record<string, CommercialService> = {};
  for (const name of names) {
    if (!SERVICE_PATTERN.test(name))
      throw new CommercialError("bad-plugin", `${source}: service name ${JSON.stringify(name)} must be 1..32 characters of a-z, 0-9 and -`);
    const s = (services as Record<string, unknown>)[name] as {
      mode?: unknown;
      handle?: unknown;
      open?: unknown;
      maxMessageBytes?: unknown;
      requiresIdentity?: unknown;
    } | null;
    const mode = s?.mode as ServiceMode | undefined;
    if (mode === "request" ? typeof s?.handle !== "function" : mode === "duplex" ? typeof s?.open !== "function" : true) {
      throw new CommercialError(
        "bad-plugin",
        `${source}: service ${name} must be { mode: "request", handle(request, ctx) } or { mode: "duplex", open(io, ctx) }`,
      );
    }
    if (s?.maxMessageBytes !== undefined && (!Number.isSafeInteger(s.maxMessageBytes) || (s.maxMessageBytes as number) < 1)) {
      throw new CommercialError("bad-plugin", `${source}: service ${name} maxMessageBytes must be a positive integer`);
    }
    if (s?.requiresIdentity !== undefined && typeof s.requiresIdentity !== "boolean") {
      throw new CommercialError("bad-plugin", `${source}: service ${name} requiresIdentity must be true or false`);
    }
    out[name] = s as unknown as CommercialService;
  }
  return { services: out };
}

/** Imports a plugin module (a path, resolved from `baseDir`) and checks it. */
export async function loadPlugin(path: string, baseDir = process.cwd()): Promise<CommercialPlugin> {
  const full = isAbsolute(path) ? path : resolve(baseDir, path);
  let mod: unknown;
  try {
    mod = await import(pathToFileURL(full).href);
  } catch (err) {
    throw new CommercialError("bad-plugin", `cannot load plugin ${full}: ${(err as Error).message}`, { cause: err });
  }
  return checkPlugin(mod, full);
}
