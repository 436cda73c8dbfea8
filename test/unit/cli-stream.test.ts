/**
 * `psp stream`'s exit codes and state dir, without a network: each failure
 * class the command documents maps to its own code (a typo, a refusal by the
 * oracle, nothing reachable, a node's refusal, a broken-off stream), and the
 * publisher files go where --state-dir, PSP_STATE_DIR, XDG_STATE_HOME say,
 * in that order.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuthorityError } from "../../node/src/authority/service.js";
import { ClientError } from "../../node/src/client/errors.js";
import { exitCodeOf, streamStateDir, StreamExit } from "../../node/src/cli/stream.js";
import { StreamMediaError } from "../../node/src/stream/media-errors.js";
import { OracleError } from "../../node/src/stream/oracle-errors.js";

describe("psp stream exit codes", () => {
  it("gives each documented failure class its own code", () => {
    expect(exitCodeOf(new StreamMediaError("bad-ticket", "cut"))).toBe(StreamExit.badTicket);
    expect(exitCodeOf(new OracleError("not-subscribed", "no"))).toBe(StreamExit.notAllowed);
    const unregistered = new AuthorityError("identity-not-registered", "who?");
    expect(exitCodeOf(new ClientError("no-authorities", "not registered", { cause: unregistered }))).toBe(StreamExit.notAllowed);
    const down = new AuthorityError("unreachable", "no authority answered");
    expect(exitCodeOf(new ClientError("no-authorities", "no certificate", { cause: down }))).toBe(StreamExit.other);
    expect(exitCodeOf(new StreamMediaError("unreachable", "the consensus lists no onion relay"))).toBe(StreamExit.unreachable);
    expect(exitCodeOf(new OracleError("unreachable", "no oracle"))).toBe(StreamExit.unreachable);
    for (const kind of ["bad-receipt", "bad-token", "unknown-stream", "bad-session", "over-limit", "replayed"] as const)
      expect(exitCodeOf(new StreamMediaError(kind, kind)), kind).toBe(StreamExit.refused);
    expect(exitCodeOf(new StreamMediaError("closed", "lost"))).toBe(StreamExit.brokeOff);
    expect(exitCodeOf(new ClientError("bad-bootstrap", "no devnet"))).toBe(StreamExit.other);
    expect(exitCodeOf(new Error("plain"))).toBe(StreamExit.other);
    expect(new Set(Object.values(StreamExit)).size).toBe(Object.keys(StreamExit).length);
  });
});

describe("psp stream state dir", () => {
  const saved = { PSP_STATE_DIR: process.env.PSP_STATE_DIR, XDG_STATE_HOME: process.env.XDG_STATE_HOME };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("takes --state-dir, then PSP_STATE_DIR, then XDG_STATE_HOME/psp, then ~/.local/state/psp", () => {
    delete process.env.PSP_STATE_DIR;
    delete process.env.XDG_STATE_HOME;
    expect(streamStateDir(undefined)).toBe(join(homedir(), ".local", "state", "psp"));
    process.env.XDG_STATE_HOME = "/x";
    expect(streamStateDir(undefined)).toBe(join("/x", "psp"));
    process.env.PSP_STATE_DIR = "/p";
    expect(streamStateDir(undefined)).toBe("/p");
    expect(streamStateDir("/o")).toBe("/o");
  });
});
