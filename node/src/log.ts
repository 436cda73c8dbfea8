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
 * `onLog` or someone `watchLogEvents` on it, counted (the node counts them
 * per level, component, kind and operation in /metrics). A failure logged at
 * debug is counted even while debug lines are not printed, so a peer's
 * refused input costs a counter increment, not a log line. Nothing is
 * swallowed.
 */
import { createRequire } from "node:module";
import { pino } from "pino";
import type { Logger as PinoLogger, LevelWithSilent } from "pino";
import { PspError } from "./errors.js";

const requireModule = createRequire(import.meta.url);

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;

export const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/**
 * One log call at warn or above, or one failure reported through
 * `logFailure` at any level, as `onLog` and `watchLogEvents` see it.
 */
export interface LogEvent {
  level: "debug" | "info" | "warn" | "error" | "fatal";
  /** The innermost `component` binding ("dht", "onion.relay", ...), or "root". */
  component: string;
  /** The logged error's `layer/kind` when it is a PspError, else its name, or "none". */
  errorKind: string;
  /** What failed ("reseed", "fetch consensus", ...), when the call named it. */
  operation?: string;
}

export type LogListener = (event: LogEvent) => void;

/** The levels a failure can be reported at. */
export type FailureLevel = "debug" | "info" | "warn" | "error";

export interface CreateLoggerOptions {
  /** Default "info". */
  level?: LogLevel;
  /** Bindings on every line (e.g. { node: "onion-1" }). */
  base?: Record<string, unknown>;
  /** Human-readable output instead of JSON lines; default: when the destination is a TTY. */
  pretty?: boolean;
  /** Where lines go: a writable stream or a file descriptor (default 1, stdout). */
  destination?: NodeJS.WritableStream | number;
  /** Called for every warn, error and fatal line and every logFailure (metrics); see watchLogEvents. */
  onLog?: LogListener;
}

const LEVEL_NAMES: Record<number, LogEvent["level"]> = {
  40: "warn",
  50: "error",
  60: "fatal",
};

function errorOf(args: unknown[]): unknown {
  const first = args[0];
  if (first instanceof Error) return first;
  return typeof first === "object" && first !== null && "err" in first ? (first as { err: unknown }).err : undefined;
}

function errorKindOf(err: unknown): string {
  if (err instanceof PspError) return err.qualifiedKind;
  if (err instanceof Error) return err.name;
  return "none";
}

function operationOf(args: unknown[]): string | undefined {
  const first = args[0];
  const operation = typeof first === "object" && first !== null && "operation" in first ? (first as { operation: unknown }).operation : undefined;
  return typeof operation === "string" ? operation : undefined;
}

function componentOf(log: Logger): string {
  const component = (log.bindings() as { component?: unknown }).component;
  return typeof component === "string" ? component : "root";
}

/** Listeners live on the logger they watch; pino children inherit from their parent's object, so a walk up the prototype chain finds every watcher. */
const LISTENERS = Symbol("psp.logListeners");
type Watched = { [LISTENERS]?: Set<LogListener> };

/** Hands the event to every watcher of `log` or its ancestors; the event is built only when someone watches (simulators log into silence a lot). */
function notify(log: Logger, makeEvent: () => LogEvent): void {
  let event: LogEvent | undefined;
  for (let o: object | null = log; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (!Object.hasOwn(o, LISTENERS)) continue;
    for (const listener of (o as Watched)[LISTENERS] as Set<LogListener>) listener((event ??= makeEvent()));
  }
}

/**
 * Calls `listener` for every warn-and-above line of `logger` and its
 * children, and for every failure they report through logFailure (at any
 * level). Warn lines reach it only from loggers made by createLogger (the
 * hook lives on the root). Watch a root or a logger made with `.child()`:
 * childLogger re-roots nested components on the nearest such logger, so a
 * watcher on a childLogger product misses its grandchildren. Returns a
 * function that stops the calls.
 */
export function watchLogEvents(logger: Logger, listener: LogListener): () => void {
  const target = logger as Logger & Watched;
  if (!Object.hasOwn(target, LISTENERS)) Object.defineProperty(target, LISTENERS, { value: new Set<LogListener>(), enumerable: false });
  const listeners = target[LISTENERS] as Set<LogListener>;
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** Set while logFailure writes its line: it has reported the event itself, so the hook must not count it again. */
let reportedByCaller = false;

/** A root logger; components take children of it. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const destination = options.destination ?? 1;
  const isTty = typeof destination === "number" ? destination === 1 && process.stdout.isTTY === true : (destination as { isTTY?: boolean }).isTTY === true;
  const pretty = options.pretty ?? isTty;
  const pinoOptions: pino.LoggerOptions = {
    level: options.level ?? "info",
    base: options.base ?? null,
    serializers: { err: serializeError },
    hooks: {
      logMethod(this: Logger, args: Parameters<pino.LogFn>, method: pino.LogFn, level: number) {
        const name = LEVEL_NAMES[level];
        if (name && !reportedByCaller) {
          notify(this, () => {
            const operation = operationOf(args);
            return { level: name, component: componentOf(this), errorKind: errorKindOf(errorOf(args)), ...(operation === undefined ? {} : { operation }) };
          });
        }
        method.apply(this, args);
      },
    },
  };
  const stream = typeof destination === "number" ? pino.destination({ fd: destination, sync: true }) : destination;
  const root = pino(pinoOptions, pretty ? prettyStream(stream) : stream);
  if (options.onLog) watchLogEvents(root, options.onLog);
  return root;
}

/** One silent logger for every component given none (simulators make thousands of components); shared, so never change its level. */
const SILENT: Logger = pino({ level: "silent" });

/** A logger that writes nothing (the default for library users). */
export function silentLogger(): Logger {
  return SILENT;
}

/**
 * The logger a component uses: a child of `parent` bound to `component`
 * (nested names join with "."), or a silent one when there is no parent.
 */
export function childLogger(parent: Logger | undefined, component: string, bindings: Record<string, unknown> = {}): Logger {
  if (!parent || parent === SILENT) return SILENT;
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
 * The level a failure deserves when the caller does not say: a closed
 * object is no news (debug), a programming error is a bug (error),
 * anything else (a peer, the network, the chain) a warning.
 */
export function failureLevel(err: unknown): FailureLevel {
  if (err instanceof PspError) {
    if (err.category === "shutdown") return "debug";
    return err.category === "bug" ? "error" : "warn";
  }
  return err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError ? "error" : "warn";
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reports an error that has no caller to go to (a background refresh, a
 * fire-and-forget send): logged at `level` (default: failureLevel(err)) with
 * the operation that failed, and counted by every watcher even when that
 * level is not printed. Use it as `.catch((err) => logFailure(log, err, "reseed"))`.
 */
export function logFailure(log: Logger, err: unknown, operation: string, level: FailureLevel = failureLevel(err), fields: Record<string, unknown> = {}): void {
  notify(log, () => ({ level, component: componentOf(log), errorKind: errorKindOf(err), operation }));
  if (!log.isLevelEnabled(level)) return;
  reportedByCaller = true;
  try {
    log[level]({ ...fields, err, operation }, `${operation} failed: ${messageOf(err)}`);
  } finally {
    reportedByCaller = false;
  }
}

/**
 * logFailure for failures that can repeat at a peer's or the network's pace
 * (every retry of an unreachable node): the first of each operation and
 * error kind is logged at once, then at most one line per `intervalMs`
 * carrying how many were left out (`suppressed`). Every occurrence is still
 * counted by the watchers.
 */
export function throttledFailureLog(log: Logger, intervalMs = 60_000, clock: () => number = () => performance.now()): (err: unknown, operation: string, level?: FailureLevel) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (err, operation, level = failureLevel(err)) => {
    const key = `${operation}\0${errorKindOf(err)}`;
    const now = clock();
    const seen = last.get(key);
    if (seen && now - seen.at < intervalMs) {
      seen.suppressed++;
      notify(log, () => ({ level, component: componentOf(log), errorKind: errorKindOf(err), operation }));
      return;
    }
    // Keys are operations × error kinds, both fixed sets in the code; the cap guards against a caller that is not.
    if (last.size >= 256 && !seen) last.clear();
    last.set(key, { at: now, suppressed: 0 });
    logFailure(log, err, operation, level, seen && seen.suppressed > 0 ? { suppressed: seen.suppressed } : {});
  };
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
  // A terminal shows one process: its name and component lead the message instead of filling lines of their own.
  return pretty({
    destination,
    sync: true,
    colorize: true,
    ignore: "pid,hostname,node,name,component",
    messageFormat: "{if name}[{name}] {end}{if component}{component}: {end}{msg}",
    translateTime: "HH:MM:ss.l",
  });
}
