/**
 * `psp stream create | publish | play`: real-time streams from the command
 * line (docs/spec/streaming.md), over `createPspClient().streams` and
 * `client.oracle`:
 *
 *   ticket=$(psp stream create --key-file alice.key)
 *   ffmpeg … -f mpegts - | psp stream publish --ticket "$ticket" &
 *   psp stream play --ticket "$ticket" | ffplay -
 *
 * `create` gets a creation receipt from an oracle as the identity of
 * --key-file (linkable, or with --blind one the oracle cannot link), creates
 * the stream anonymously at a landing node through a fresh circuit, prints
 * the viewer ticket (`pspstream1:…`, stream id + key + landing node) on
 * stdout and keeps the producer's secret apart: the publisher file
 * `<state dir>/streams/<stream id, 32 hex>.json` (directory 0700, file 0600)
 * holds `{ v: 1, ticket, token (hex), expiresAt (ms) }`. The ticket carries
 * no token, so handing it to viewers never lets them publish. The state dir
 * is --state-dir, else $PSP_STATE_DIR, else $XDG_STATE_HOME/psp, else
 * ~/.local/state/psp. `publish` finds the file by the ticket's stream id,
 * publishes standard input until EOF, ends the stream (END) and removes the
 * file (an ended stream cannot be published again); SIGINT or SIGTERM ends
 * the stream the same way. `play` gets a session
 * id from an oracle (a puzzle, no identity), attaches, waits for the first
 * chunk when the producer has not started, writes the plaintext to stdout
 * (or --out) and exits 0 when the stream ends. Progress and errors go to
 * stderr only. With `--json` the status lines are JSON objects on stderr
 * (`{"event":"attached",...}`), the answer one JSON object on stdout
 * (`create`: `{ ticket, streamId, publisherFile, expiresAt }`; `publish`:
 * `{ event: "ended", streamId, chunks, bytes }`; `play` with --out:
 * `{ event: "ended", chunks, bytes, dropped }`, without --out that line goes
 * to stderr, as stdout carries the stream), and a failure also
 * `{ "error": {...} }` on stdout.
 *
 * Exit codes (errors print `error: [layer/kind] message; fix: …`):
 *   0 done · 1 anything else (no devnet, no key file, a bug) · 2 a mistyped
 *   or cut ticket · 3 no publisher file for the ticket here · 4 the oracle
 *   refused the identity (not subscribed, not registered) · 5 no landing
 *   node, oracle or access point reachable (retry later) · 6 a node refused
 *   (receipt, token, session, limits, unknown or ended stream) · 7 the
 *   stream broke off (link lost without END).
 *
 * Trusts: the user at the terminal; the consensus (client) for nodes and
 * oracles; every answer is checked by the stream and oracle layers.
 */
import { createWriteStream, existsSync } from "node:fs";
import type { WriteStream } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { AuthorityError } from "../authority/service.js";
import { hexOf, parseHex } from "../base/hex.js";
import { ClientError } from "../client/errors.js";
import { isPspError } from "../errors.js";
import type { PspError } from "../errors.js";
import { StreamMediaError } from "../stream/media-errors.js";
import { OracleError } from "../stream/oracle-errors.js";
import { publishReadable } from "../stream/publisher.js";
import type { ViewerSession } from "../stream/oracle-client.js";
import { decodeTicket } from "../stream/ticket.js";
import { anonymousClientOptions, clientOptions, closeClient, openClient, untilSignal, warnLine } from "./client-options.js";
import type { ClientCliOptions } from "./client-options.js";
import { integerOption } from "./options.js";
import { jsonText, printJson, reportFailure } from "./output.js";

/** Exit codes of `psp stream` (the header lists them). */
export const StreamExit = {
  ok: 0,
  other: 1,
  badTicket: 2,
  noPublisherFile: 3,
  notAllowed: 4,
  unreachable: 5,
  refused: 6,
  brokeOff: 7,
} as const;

/** How long `create` keeps retrying transient failures (no oracle in the consensus yet, a circuit that did not build). */
const CREATE_RETRY_MS = 60_000;
/** A session id is asked again when less than this is left of it, seconds. */
const SESSION_MARGIN_S = 30;
/** Bytes `play` lets pile up on a slow stdout before it drops chunks (the live edge matters more than every byte). */
const MAX_OUTPUT_BACKLOG = 16 * 1024 * 1024;

interface CreateOptions extends ClientCliOptions {
  keyFile: string;
  public?: boolean;
  distribution: number;
  bitrate: number;
  duration: number;
  blind?: boolean;
  stateDir?: string;
  verbose?: boolean;
  json?: boolean;
}

interface PublishOptions {
  ticket: string;
  stateDir?: string;
  bootstrap?: string;
  verbose?: boolean;
  json?: boolean;
}

interface PlayOptions {
  ticket: string;
  out?: string;
  bootstrap?: string;
  verbose?: boolean;
  json?: boolean;
}

/** No usable publisher file for a ticket here (client/bad-option; exit 3). */
class PublisherFileError extends ClientError {}

/** What `create` leaves for `publish`: the producer's secret, never in the ticket. */
interface PublisherFile {
  v: 1;
  ticket: string;
  token: string;
  expiresAt: number;
}

/** Where the publisher files live: --state-dir, $PSP_STATE_DIR, $XDG_STATE_HOME/psp, ~/.local/state/psp. */
export function streamStateDir(option: string | undefined): string {
  if (option) return option;
  if (process.env.PSP_STATE_DIR) return process.env.PSP_STATE_DIR;
  const xdg = process.env.XDG_STATE_HOME;
  return join(xdg ? xdg : join(homedir(), ".local", "state"), "psp");
}

const publisherFilePath = (stateDir: string, streamId: Uint8Array): string => join(stateDir, "streams", `${hexOf(streamId)}.json`);

/** The client options of a command that acts as no identity (publish, play). */

function warnings(opts: { verbose?: boolean }): (err: Error) => void {
  return opts.verbose ? warnLine : () => undefined;
}

/** A status line on stderr: the text, or with --json `{ event, ...fields }` on one line. */
function status(opts: { json?: boolean }, event: string, line: string, fields: Record<string, unknown> = {}): void {
  console.error(opts.json ? jsonText({ event, ...fields }, undefined) : line);
}

/** Retries `fn` while it fails transiently (the oracle or a circuit not there yet), up to CREATE_RETRY_MS. */
async function retryTransient<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + CREATE_RETRY_MS;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isPspError(err) || err.category !== "transient" || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(err.retryAfterMs ?? 1000, 5000)));
    }
  }
}

/** A failure as one line with its fix, keeping its kind. */
function explain(err: unknown, keyFile?: string): unknown {
  if (!isPspError(err)) return err;
  if (OracleError.is(err, "not-subscribed"))
    return new OracleError("not-subscribed", `the oracle refused: ${err.message}`, {
      cause: err,
      fix: "the identity needs a paid subscription on chain (Subscriptions.subscribe); on the devnet alice is subscribed: --key-file devnet/keys/alice.key",
    });
  const authority = err.walk((e) => e instanceof AuthorityError) as AuthorityError | undefined;
  if (authority?.refusals.some((r) => r.kind === "identity-not-registered"))
    return new ClientError("no-authorities", "the identity is not registered on chain, so no authority certifies it", {
      cause: err,
      fix: `register it first: psp identity register --key-file ${keyFile ?? "<key file>"}`,
    });
  if (err.fix !== undefined) return err;
  if (OracleError.is(err, "unreachable"))
    return new OracleError("unreachable", err.message, { cause: err, fix: "check that the network's oracle nodes run (psp status), then try again" });
  if (StreamMediaError.is(err, "unreachable", "timeout"))
    return new StreamMediaError(err.kind, err.message, { cause: err, fix: "check that the stream's nodes run (psp status), then try again" });
  if (StreamMediaError.is(err, "unknown-stream"))
    return new StreamMediaError("unknown-stream", err.message, { cause: err, fix: "the stream ended or expired: ask its producer for a new ticket" });
  if (StreamMediaError.is(err, "bad-token"))
    return new StreamMediaError("bad-token", err.message, { cause: err, fix: "publish from the machine and --state-dir where `psp stream create` ran" });
  if (StreamMediaError.is(err, "over-limit"))
    return new StreamMediaError("over-limit", err.message, { cause: err, fix: "ask for less: a lower --bitrate or --duration" });
  if (StreamMediaError.is(err, "bad-receipt", "replayed", "bad-session"))
    return new StreamMediaError(err.kind, err.message, { cause: err, fix: "run the command again (it fetches a fresh receipt or session id)" });
  return err;
}

/** The authorities refused to certify the identity (not registered, revoked): not a network hiccup. */
function refusedByAuthorities(err: PspError): boolean {
  const authority = err.walk((c) => c instanceof AuthorityError) as AuthorityError | undefined;
  return authority !== undefined && (authority.category === "refused" || authority.refusals.some((r) => r.category === "refused"));
}

/** The exit code of a failure (the header's table). */
export function exitCodeOf(err: unknown): number {
  if (!isPspError(err)) return StreamExit.other;
  const e = err as PspError;
  if (StreamMediaError.is(e, "bad-ticket")) return StreamExit.badTicket;
  if (e instanceof PublisherFileError) return StreamExit.noPublisherFile;
  if (OracleError.is(e, "not-subscribed", "bad-certificate", "bad-proof") || refusedByAuthorities(e)) return StreamExit.notAllowed;
  if (StreamMediaError.is(e, "closed")) return StreamExit.brokeOff;
  if (e.layer === "stream" || e.layer === "oracle" || e.layer === "onion") {
    if (e.category === "transient") return StreamExit.unreachable;
    if (e.category === "refused" || e.category === "peer") return StreamExit.refused;
  }
  return StreamExit.other;
}

/** Runs a subcommand: a failure is one error line and its exit code (runCli would make every failure 1). */
function action<O extends { json?: boolean }>(run: (opts: O) => Promise<void>, keyFile?: (opts: O) => string | undefined): (opts: O) => Promise<void> {
  return async (opts) => {
    try {
      await run(opts);
    } catch (raw) {
      const err = explain(raw, keyFile?.(opts));
      reportFailure(err, { json: opts.json, exitCode: exitCodeOf(err) });
    }
  };
}

async function create(opts: CreateOptions): Promise<void> {
  const stateDir = streamStateDir(opts.stateDir);
  const client = await openClient(opts, warnings(opts));
  try {
    const created = await retryTransient(async () => {
      const obtained = await client.oracle.receipt({ mode: opts.blind ? "blind" : "linkable" });
      return await client.streams.create({
        receipt: obtained.receipt.bytes,
        kbps: opts.bitrate,
        durationS: opts.duration,
        public: opts.public ?? false,
        distribution: opts.distribution,
      });
    });
    const ticket = decodeTicket(created.ticket);
    const file = publisherFilePath(stateDir, ticket.streamId);
    await mkdir(join(stateDir, "streams"), { recursive: true, mode: 0o700 });
    const body: PublisherFile = { v: 1, ticket: created.ticket, token: hexOf(created.token), expiresAt: created.expiresAt };
    await writeFile(file, JSON.stringify(body) + "\n", { mode: 0o600 });
    await chmod(file, 0o600); // an existing file keeps its mode on writeFile
    if (opts.json) printJson({ ticket: created.ticket, streamId: hexOf(ticket.streamId), publisherFile: file, expiresAt: created.expiresAt });
    else {
      status(opts, "created", `stream ${hexOf(ticket.streamId)} created; its publish token is in ${file}; it expires ${new Date(created.expiresAt).toISOString()}`);
      console.log(created.ticket);
    }
  } finally {
    await closeClient(client);
  }
}

async function readPublisherFile(stateDir: string, streamId: Uint8Array): Promise<{ file: string; token: Uint8Array; expiresAt: number }> {
  const file = publisherFilePath(stateDir, streamId);
  const missing = (why: string): PublisherFileError =>
    new PublisherFileError("bad-option", `no publisher file for stream ${hexOf(streamId)} (${why})`, {
      fix: "publish on the machine where `psp stream create` made the ticket, with the same --state-dir (or PSP_STATE_DIR)",
    });
  if (!existsSync(file)) throw missing(`${file} does not exist`);
  let parsed: Partial<PublisherFile>;
  try {
    parsed = JSON.parse(await readFile(file, "utf8")) as Partial<PublisherFile>;
  } catch (err) {
    throw missing(`${file} is not JSON: ${(err as Error).message}`);
  }
  const token = typeof parsed.token === "string" ? parseHex(parsed.token) : undefined;
  if (parsed.v !== 1 || token?.length !== 32 || typeof parsed.expiresAt !== "number") throw missing(`${file} is not a publisher file`);
  return { file, token, expiresAt: parsed.expiresAt };
}

async function publish(opts: PublishOptions): Promise<void> {
  const ticket = decodeTicket(opts.ticket);
  const { file, token, expiresAt } = await readPublisherFile(streamStateDir(opts.stateDir), ticket.streamId);
  if (expiresAt <= Date.now()) throw new StreamMediaError("unknown-stream", `stream ${hexOf(ticket.streamId)} expired at ${new Date(expiresAt).toISOString()}`);
  // A client without identity: its consensus names more distribution nodes when the landing node asks.
  const client = await openClient(anonymousClientOptions(opts.bootstrap), warnings(opts));
  try {
    const publisher = await client.streams.publish({ ticket: opts.ticket, token });
    status(opts, "publishing", `publishing standard input to stream ${hexOf(ticket.streamId)} at ${ticket.host}:${ticket.port}; EOF, SIGINT or SIGTERM ends the stream`, {
      streamId: hexOf(ticket.streamId),
      landing: `${ticket.host}:${ticket.port}`,
    });
    // SIGINT or SIGTERM (Ctrl-C, `kill %1`) ends the stream as EOF does: the viewers get END and exit 0.
    let signalled = false;
    void untilSignal().then(() => {
      signalled = true;
      process.stdin.destroy();
    });
    try {
      // A link the landing node closes mid-stream fails the next write: stream/closed, exit 7.
      await publishReadable(publisher, process.stdin);
    } catch (err) {
      if (!signalled) throw err;
      publisher.end(); // the input was cut by the signal (publishReadable ends the stream only at EOF): END now
    }
    await rm(file, { force: true });
    if (opts.json) printJson({ event: "ended", streamId: hexOf(ticket.streamId), chunks: publisher.chunksSent, bytes: publisher.bytesSent });
    else status(opts, "ended", `stream ended: ${publisher.chunksSent} chunks, ${publisher.bytesSent} bytes published`);
  } finally {
    await closeClient(client);
  }
}

async function play(opts: PlayOptions): Promise<void> {
  decodeTicket(opts.ticket); // a mistyped ticket fails before anything connects
  const client = await openClient(anonymousClientOptions(opts.bootstrap), warnings(opts));
  let out: WriteStream | NodeJS.WriteStream | undefined;
  try {
    // The player reports what it received under this session's viewer key, so the nodes that carried it are paid.
    let session: ViewerSession | undefined;
    const currentSession = async (): Promise<ViewerSession> => {
      if (!session || session.id.expiresAt - SESSION_MARGIN_S <= Date.now() / 1000) session = await retryTransient(() => client.oracle.session());
      return session;
    };
    await currentSession(); // a refused or unreachable oracle fails here, before any output is opened
    const player = await client.streams.play({ ticket: opts.ticket, session: currentSession });
    out = opts.out === undefined ? process.stdout : createWriteStream(opts.out);
    const sink = out;
    let dropped = 0;
    let outputGone = false;
    sink.on("error", (err: NodeJS.ErrnoException) => {
      // A reader that went away (ffplay closed: EPIPE) ends playing; nothing is wrong with the stream.
      outputGone = true;
      if (err.code !== "EPIPE") warnLine(new Error(`writing the stream failed: ${err.message}`));
      player.close();
    });
    status(opts, "attached", `attached to ${player.stats.attachedTo.at(-1) ?? "an access point"}; waiting for the first chunk`, {
      accessPoint: player.stats.attachedTo.at(-1) ?? null,
    });
    let first = true;
    player.on("media", (chunk) => {
      if (first) {
        first = false;
        status(opts, "receiving", "receiving");
      }
      if (outputGone) return;
      if (sink.writableLength > MAX_OUTPUT_BACKLOG) dropped++;
      else sink.write(chunk.media);
    });
    let failure: StreamMediaError | undefined;
    player.on("error", (err) => (failure = err));
    const ended = new Promise<void>((resolve) => player.once("end", resolve));
    const stopped = untilSignal().then(() => player.close());
    await Promise.race([ended, stopped]);
    if (failure) throw new StreamMediaError("closed", `the stream broke off: ${failure.message}`, { cause: failure, fix: "play the ticket again" });
    const summary = { chunks: player.stats.chunks, bytes: player.stats.bytes, dropped };
    if (opts.json && opts.out !== undefined) printJson({ event: "ended", ...summary });
    else status(opts, "ended", `stream ended: ${player.stats.chunks} chunks, ${player.stats.bytes} bytes${dropped > 0 ? `, ${dropped} chunks dropped on a slow output` : ""}`, summary);
  } finally {
    if (out && out !== process.stdout) await new Promise<void>((resolve) => (out as WriteStream).end(resolve));
    await closeClient(client);
  }
}

export function register(program: Command): void {
  const stream = program
    .command("stream")
    .description("real-time streams: create one (a viewer ticket), publish standard input to it, play it to standard output");

  clientOptions(
    stream.command("create").description("create a stream as a subscribed identity and print its viewer ticket (the publish token stays in --state-dir)"),
    "required",
  )
    .option("--public", "publish the stream in the DHT (its access points and format, never its key)")
    .option("--distribution <n>", "distribution nodes to fan out through", integerOption("--distribution", 0, 32), 2)
    .option("--bitrate <kbit/s>", "bitrate cap (at most the receipt's)", integerOption("--bitrate", 1, 1_000_000), 2000)
    .option("--duration <s>", "how long the stream may run, seconds (at most the receipt's)", integerOption("--duration", 1, 7 * 24 * 3600), 3600)
    .option("--blind", "an RFC 9474 blind receipt: not even the issuing oracle can link the stream to the identity")
    .option("--state-dir <dir>", "where the publisher file goes (default $PSP_STATE_DIR, else $XDG_STATE_HOME/psp, else ~/.local/state/psp)")
    .option("--verbose", "print the client's background warnings on stderr")
    .option("--json", "status lines as JSON objects on stderr, the answer as one JSON object on stdout")
    .action(action(create, (o) => o.keyFile));

  stream
    .command("publish")
    .description("publish standard input (MPEG-TS, e.g. ffmpeg … -f mpegts -) to a stream until EOF, then end it")
    .requiredOption("--ticket <ticket>", "the ticket `psp stream create` printed")
    .option("--state-dir <dir>", "where `psp stream create` put the publisher file (default as there)")
    .option("--bootstrap <file>", "a devnet state.json or a { nodes, discovery } file (default devnet/state.json)")
    .option("--verbose", "print the client's background warnings on stderr")
    .option("--json", "status lines as JSON objects on stderr, the answer as one JSON object on stdout")
    .action(action(publish));

  stream
    .command("play")
    .description("play a stream: its plaintext to standard output (| ffplay -) until it ends")
    .requiredOption("--ticket <ticket>", "the stream's ticket, from its producer")
    .option("--out <file>", "write to this file instead of standard output")
    .option("--bootstrap <file>", "a devnet state.json or a { nodes, discovery } file (default devnet/state.json)")
    .option("--verbose", "print the client's background warnings on stderr")
    .option("--json", "status lines as JSON objects on stderr, the answer as one JSON object on stdout")
    .action(action(play));
}
