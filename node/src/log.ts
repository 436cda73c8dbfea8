/**
 * Structured logging for every PSP component (pino).
 *
 * Every component takes a `Logger` in its options and logs through a child
 * bound to its component name, the way js-libp2p hands each component its
 * own logger: `childLogger(options.logger, "dht")`. A library user who
 * passes none gets a silent logger (the client also reports through its
 * "warning" event); the node process passes a real one: JSON lines with
 * levels, pretty-printed when its output is a terminal.
 *
 * `logFailure` is how a background task that cannot throw to anyone reports
 * an error: logged with its context and, when the root logger was made with
 * `onLog`, counted (the node counts warn and above per component and kind
 * in /metrics). Nothing is swallowed.
 */
import { createRequire } from "node:module";
import { pino } from "pino";
import type { Logger as PinoLogger, LevelWithSilent } from "pino";
import { PspError } from "./errors.js";

const requireModule = createRequire(import.meta.url);

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;

export const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** One log call at warn or above, as `onLog` sees it. */
export interface LogEvent {
  level: "warn" | "error" | "fatal";
  /** The innermost `component` binding ("dht", "onion.relay", ...), or "root". */
  component: string;
  /** The logged error's `layer/kind` when it is a PspError, else its name, or "none". */
  errorKind: string;
}

export interface CreateLoggerOptions {
  /** Default "info". */
  level?: LogLevel;
  /** Bindings on every line (e.g. { node: "onion-1" }). */
  base?: Record<string, unknown>;
  /** Human-readable output instead of JSON lines; default: when the destination is a TTY. */
  pretty?: boolean;
  /** Where lines go: a writable stream or a file descriptor (default 1, stdout). */
  destination?: NodeJS.WritableStream | number;
  /** Called for every warn, error and fatal line (metrics). */
  onLog?: (event: LogEvent) => void;
}

const LEVEL_NAMES: Record<number, LogEvent["level"]> = {
  40: "warn",
  50: "error",
  60: "fatal",
};

function errorKindOf(args: unknown[]): string {
  const first = args[0];
  const err = first instanceof Error ? first : typeof first === "object" && first !== null && "err" in first ? (first as { err: unknown }).err : undefined;
  if (err instanceof PspError) return err.qualifiedKind;
  if (err instanceof Error) return err.name;
  return "none";
}

/** A root logger; components take children of it. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const destination = options.destination ?? 1;
  const isTty = typeof destination === "number" ? destination === 1 && process.stdout.isTTY === true : (destination as { isTTY?: boolean }).isTTY === true;
  const pretty = options.pretty ?? isTty;
  const onLog = options.onLog;
  const pinoOptions: pino.LoggerOptions = {
    level: options.level ?? "info",
    base: options.base ?? null,
    serializers: { err: serializeError },
    ...(onLog
      ? {
          hooks: {
            logMethod(this: Logger, args: Parameters<pino.LogFn>, method: pino.LogFn, level: number) {
              const name = LEVEL_NAMES[level];
              if (name) {
                const component = (this.bindings() as { component?: unknown }).component;
                onLog({
                  level: name,
                  component: typeof component === "string" ? component : "root",
                  errorKind: errorKindOf(args),
                });
              }
              method.apply(this, args);
            },
          },
        }
      : {}),
  };
  const stream = typeof destination === "number" ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino(pinoOptions, pretty ? prettyStream(stream) : stream);
}

/** A logger that writes nothing (the default for library users). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * The logger a component uses: a child of `parent` bound to `component`
 * (nested names join with "."), or a silent one when there is no parent.
 */
export function childLogger(parent: Logger | undefined, component: string, bindings: Record<string, unknown> = {}): Logger {
  if (!parent) return silentLogger();
  // pino repeats a key bound twice, so a nested component is bound once, on
  // the root, with the joined name and the parent's other bindings.
  const root = rootOf.get(parent) ?? parent;
  const { component: outer, ...parentBindings } = parent.bindings() as Record<string, unknown>;
  const onRoot = root.bindings() as Record<string, unknown>;
  const inherited = Object.fromEntries(Object.entries(parentBindings).filter(([k, v]) => onRoot[k] !== v));
  const name = typeof outer === "string" && outer.length > 0 ? `${outer}.${component}` : component;
  const child = root.child({ ...inherited, ...bindings, component: name });
  rootOf.set(child, root);
  return child;
}

const rootOf = new WeakMap<Logger, Logger>();

/**
 * Reports an error that has no caller to go to (a background refresh, a
 * fire-and-forget send): logged at `level` (default warn) with the operation
 * that failed. Use it as `.catch((err) => logFailure(log, err, "reseed"))`.
 */
export function logFailure(log: Logger, err: unknown, operation: string, level: "warn" | "error" | "debug" = "warn"): void {
  log[level]({ err, operation }, `${operation} failed: ${err instanceof Error ? err.message : String(err)}`);
}

function serializeError(err: unknown): unknown {
  if (err instanceof PspError)
    return {
      ...err.toJSON(),
      ...(err.category === "bug" && err.stack ? { stack: err.stack } : {}),
    };
  return pino.stdSerializers.err(err as Error);
}

/** pino-pretty is loaded only when pretty output is asked for (a terminal), so JSON-only runs never load it. */
function prettyStream(destination: NodeJS.WritableStream | pino.DestinationStream): NodeJS.WritableStream {
  const pretty = requireModule("pino-pretty") as (options: Record<string, unknown>) => NodeJS.WritableStream;
  return pretty({
    destination,
    sync: true,
    colorize: true,
    ignore: "pid,hostname",
    translateTime: "HH:MM:ss.l",
  });
}
