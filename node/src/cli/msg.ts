/**
 * `psp msg listen | send`: private messages from the command line.
 *
 * `listen` announces the identity's presence, accepts introductions (from
 * everyone, or only from the `--allow` identities; the others are refused)
 * and prints every message it receives: `<from>: <text>` lines on stdout
 * (notices on stderr), or with `--json` one JSON object per line on stdout:
 *
 *   {"type":"ready","identity":"<identity>","points":3}
 *   {"type":"channel","from":"<identity>"}
 *   {"type":"message","from":"<identity>","text":"..."}
 *   {"type":"closed","from":"<identity>"}
 *   {"type":"refused","from":"<identity>"}
 *
 * It runs until SIGINT or SIGTERM, then closes its channels and presence and
 * exits 0. `send` connects to an identity, sends one message and exits 0 once
 * the peer acknowledged it; a refusal, an identity not announced, a timeout
 * exit 1 with one error line naming the fix. Both default to the running
 * devnet (client-options.ts).
 */
import type { Command } from "commander";
import { InvalidArgumentError, Option } from "commander";
import { AuthorityError } from "../authority/service.js";
import { ClientError } from "../client/errors.js";
import { formatIdentity, parseIdentity } from "../crypto/identity.js";
import { isPspError } from "../errors.js";
import type { PresenceChannel } from "../presence/channel.js";
import { PresenceError } from "../presence/errors.js";
import type { IncomingIntroduction } from "../presence/client.js";
import { clientOptions, closeClient, openClient, untilSignal, warnLine, within } from "./client-options.js";
import type { ClientCliOptions } from "./client-options.js";
import { integerOption } from "./options.js";

interface ListenOptions extends ClientCliOptions {
  keyFile: string;
  verbose?: boolean;
  allow: string[];
  json?: boolean;
  points: number;
  public?: boolean;
}

interface SendOptions extends ClientCliOptions {
  keyFile: string;
  verbose?: boolean;
  to: string;
  text: string;
  direct?: boolean;
  timeout: number;
  json?: boolean;
}

/** What `listen` reports, one line each. */
type ListenEvent =
  | { type: "ready"; identity: string; points: number }
  | { type: "channel"; from: string }
  | { type: "message"; from: string; text: string }
  | { type: "closed"; from: string; error?: string }
  | { type: "refused"; from: string };

/**
 * Where the client's background warnings go: stderr with --verbose. Without
 * it they are left out (a failed bootstrap still ends in its own error line
 * naming the fix), so a command's output stays its answer.
 */
function warnings(opts: { verbose?: boolean }): (err: Error) => void {
  return opts.verbose ? warnLine : () => undefined;
}

/** An identity argument, checked (checksum and all) and in its canonical form. */
function identityArgument(value: string): string {
  try {
    return formatIdentity(parseIdentity(value));
  } catch (err) {
    throw new InvalidArgumentError(`not an identity: ${(err as Error).message}`);
  }
}

function collectIdentity(value: string, previous: string[]): string[] {
  return [...previous, identityArgument(value)];
}

/** Prints listen events: JSON lines on stdout, or messages on stdout and notices on stderr. */
function listenPrinter(json: boolean): (event: ListenEvent) => void {
  if (json) return (event) => console.log(JSON.stringify(event));
  return (event) => {
    if (event.type === "message") console.log(`${event.from}: ${event.text}`);
    else if (event.type === "ready") console.error(`listening as ${event.identity} (${event.points} presence points up); Ctrl-C stops`);
    else if (event.type === "channel") console.error(`channel opened by ${event.from}`);
    else if (event.type === "closed") console.error(`channel with ${event.from} closed${event.error ? `: ${event.error}` : ""}`);
    else console.error(`refused ${event.from}: not in --allow`);
  };
}

/** Prints a channel's messages until it closes. */
async function printChannel(channel: PresenceChannel, print: (event: ListenEvent) => void): Promise<void> {
  print({ type: "channel", from: channel.peer });
  for await (const m of channel.messages()) print({ type: "message", from: m.from, text: m.text });
  const err = await channel.closed;
  print({ type: "closed", from: channel.peer, ...(err ? { error: err.message } : {}) });
}

async function listen(opts: ListenOptions): Promise<void> {
  const print = listenPrinter(opts.json ?? false);
  const allow = new Set(opts.allow);
  const client = await openClient(opts, warnings(opts));
  const channels = new Set<PresenceChannel>();
  const answer = (intro: IncomingIntroduction): void => {
    if (allow.size > 0 && !allow.has(intro.from)) {
      intro.refuse();
      print({ type: "refused", from: intro.from });
      return;
    }
    intro.accept().then(
      (channel) => {
        channels.add(channel);
        void printChannel(channel, print).finally(() => channels.delete(channel));
      },
      (err: unknown) => warnLine(new Error(`accepting ${intro.from} failed: ${(err as Error).message}`)),
    );
  };
  try {
    client.on("introduction", answer);
    const stopped = untilSignal();
    const points = await client.presence.announce({ points: opts.points, public: opts.public ?? false });
    print({ type: "ready", identity: client.identity!, points: points.filter((p) => p.state === "up").length });
    await stopped;
  } finally {
    for (const channel of channels) channel.close();
    await closeClient(client);
  }
}

/** A connect or delivery failure as one line that names the fix, keeping its kind. */
function explain(err: unknown, to: string, me: string, keyFile: string): unknown {
  if (!isPspError(err)) return err;
  const fix = (message: string, hint: string): PresenceError =>
    new PresenceError(err instanceof PresenceError ? err.kind : "unreachable", message, { cause: err, fix: hint });
  if (PresenceError.is(err, "refused")) return fix(`${to} refused the channel`, `its user must accept introductions from ${me} (psp msg listen --allow ${me})`);
  if (PresenceError.is(err, "not-found")) return fix(`${to} is not announced`, "check the identity, and ask its user to run `psp msg listen`");
  if (PresenceError.is(err, "timeout")) return fix(err.message, "try again, or pass a larger --timeout");
  if (PresenceError.is(err, "closed")) return fix(`the channel closed before ${to} acknowledged the message`, "send it again");
  if (PresenceError.is(err)) return fix(err.message, "try again in a moment");
  const authority = err.walk((e) => e instanceof AuthorityError) as AuthorityError | undefined;
  if (authority?.refusals.some((r) => r.kind === "identity-not-registered"))
    return new ClientError("no-authorities", `${me} is not registered on chain, so no authority certifies it`, {
      cause: err,
      fix: `register it first: psp identity register --key-file ${keyFile}`,
    });
  if (authority || ClientError.is(err, "no-authorities"))
    return new ClientError("no-authorities", `no access certificate for ${me}: ${err.message}`, { cause: err, fix: "check that it is registered and the authorities run" });
  return err;
}

async function send(opts: SendOptions): Promise<void> {
  const client = await openClient(opts, warnings(opts));
  try {
    const me = client.identity!;
    const channel = await client
      .connect(opts.to, { ...(opts.direct ? { direct: true } : {}), timeoutMs: opts.timeout, channel: { ackTimeoutMs: opts.timeout } })
      .catch((err: unknown) => {
        throw explain(err, opts.to, me, opts.keyFile);
      });
    try {
      // channel.send has its own acknowledgement deadline; this one also covers a route that stops answering altogether.
      await within(channel.send(opts.text), opts.timeout + 5_000, () => new PresenceError("timeout", `${opts.to} did not acknowledge the message within ${opts.timeout} ms`));
    } catch (err) {
      throw explain(err, opts.to, me, opts.keyFile);
    } finally {
      channel.close();
    }
    console.log(opts.json ? JSON.stringify({ type: "delivered", to: opts.to }) : `delivered to ${opts.to}`);
  } finally {
    await closeClient(client);
  }
}

export function register(program: Command): void {
  const msg = program.command("msg").description("private messages over presence and rendezvous: listen for them, send one");

  clientOptions(msg.command("listen").description("announce presence, accept introductions and print every message received, until Ctrl-C"), "required")
    .addOption(new Option("--allow <identity>", "accept introductions only from this identity (repeat for more)").argParser(collectIdentity).default([], "everyone"))
    .option("--json", "one JSON object per line: ready, channel, message, closed, refused")
    .option("--points <n>", "presence points to keep", integerOption("--points", 1, 8), 3)
    .option("--public", "public presence: one-hop circuits, so the presence nodes learn this machine's address")
    .option("--verbose", "print the client's background warnings (failed fetches, circuit builds) on stderr")
    .action(listen);

  clientOptions(msg.command("send").description("send one message to an identity and exit once it acknowledged delivery"), "required")
    .requiredOption("--to <identity>", "the recipient's identity (it must be announced: psp msg listen)", identityArgument)
    .requiredOption("--text <text>", "the message")
    .option("--direct", "one-hop circuits to the rendezvous and presence nodes: faster, and they learn this machine's address (never its identity)")
    .option("--timeout <ms>", "how long connecting, and then delivery, may each take", integerOption("--timeout", 1000, 600_000), 60_000)
    .option("--json", "print the result as one JSON object")
    .option("--verbose", "print the client's background warnings (failed fetches, circuit builds) on stderr")
    .action(send);
}
