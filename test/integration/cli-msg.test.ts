/**
 * `psp msg listen` and `psp msg send` as users run them, against a real
 * devnet: carol listens (`--json`) in a child process and alice's `send`
 * exits 0 once carol acknowledged, carol printing the exact JSON line; a
 * fresh identity (bob) made and registered with the README's commands
 * listens with `--allow carol`, refuses alice (her `send` exits non-zero
 * with one error line naming the fix) and takes carol's message; with the
 * demo users `npm start` runs, bob's message to alice is acknowledged, as
 * the README says. Then the `psp client run` suite (test/suites/client-daemon.ts)
 * and, last, the commercial nodes suite (test/suites/commercial-devnet.ts) run on
 * the same devnet.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { DEVNET_PASSPHRASE } from "../../scripts/lib/devnet.js";
import { startDevnetUsers } from "../../scripts/lib/devnet-demo.js";
import { startTestDevnet, type TestDevnet } from "../helpers/devnet.js";
import { runPsp, startPsp, type RunningPsp } from "../helpers/psp.js";
import { describeClientDaemon } from "../suites/client-daemon.js";
import { describeCommercialDevnet } from "../suites/commercial-devnet.js";

let net: TestDevnet;
const running: RunningPsp[] = [];

beforeAll(async () => {
  net = await startTestDevnet("cli-msg");
}, 300_000);

afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
  await net?.stop();
});

/** `psp msg listen --json` as `keyFile`, once it is announced. */
async function listen(keyFile: string, extra: string[] = [], env: Record<string, string> = {}): Promise<{ run: RunningPsp; ready: { identity: string; points: number } }> {
  const run = startPsp(net.root, ["msg", "listen", "--key-file", keyFile, "--json", ...extra], env);
  running.push(run);
  const ready = JSON.parse(await run.line((l) => l.includes('"type":"ready"'))) as { identity: string; points: number };
  return { run, ready };
}

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("error:"));

/** bob's key file is sealed with this (PSP_KEY_PASSWORD), as in the README. */
const env = { PSP_KEY_PASSWORD: "bob's passphrase" };
let bob: Promise<{ identity: string; keyFile: string }> | undefined;

/** bob as in the README: a new identity, registered on chain through the authorities (once per file). */
function registeredBob(): Promise<{ identity: string; keyFile: string }> {
  bob ??= (async () => {
    const keyFile = join(net.root, "bob.key");
    const created = await runPsp(net.root, ["identity", "create", "--out", keyFile], env);
    expect(created.code, created.stderr).toBe(0);
    const registered = await runPsp(net.root, ["identity", "register", "--key-file", keyFile, "--deployment", join(net.root, "deployment.json"), "--rpc", net.devnet.state.rpcUrl], env);
    expect(registered.code, registered.stderr).toBe(0);
    return { identity: created.stdout.trim(), keyFile };
  })();
  return bob;
}

describe("psp msg", () => {
  it("delivers alice's message to carol's listener, which prints the exact JSON line and stops cleanly on SIGINT", async () => {
    const alice = net.user("alice");
    const carol = net.user("carol");
    // The devnet's own key files open with the devnet passphrase: no PSP_KEY_PASSWORD here.
    const { run: listener, ready } = await listen(carol.keyFile);
    expect(ready.identity).toBe(carol.identity);
    expect(ready.points).toBeGreaterThanOrEqual(1);

    const sent = await runPsp(net.root, ["msg", "send", "--key-file", alice.keyFile, "--to", carol.identity, "--text", 'hello carol, "quoted"']);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout.trim()).toBe(`delivered to ${carol.identity}`);

    const expected = JSON.stringify({ type: "message", from: alice.identity, text: 'hello carol, "quoted"' });
    expect(await listener.line((l) => l.includes('"type":"message"'))).toBe(expected);
    expect(listener.stdout()).toContain(JSON.stringify({ type: "channel", from: alice.identity }));
    expect(await listener.stop()).toEqual({ code: 0, signal: null });
  }, 180_000);

  it("--allow refuses everyone else: the sender exits non-zero with the refusal, the allowed one gets through", async () => {
    const alice = net.user("alice");
    const carol = net.user("carol");
    const { identity: bob, keyFile: bobKey } = await registeredBob();

    const { run: listener } = await listen(bobKey, ["--allow", carol.identity], env);
    const refused = await runPsp(net.root, ["msg", "send", "--key-file", alice.keyFile, "--to", bob, "--text", "let me in"]);
    expect(refused.code).not.toBe(0);
    const errors = errorLines(refused.stderr);
    expect(errors, refused.stderr).toHaveLength(1);
    expect(errors[0]).toMatch(/\[presence\/refused\] .* refused the channel; fix: .*--allow/);
    expect(await listener.line((l) => l.includes('"type":"refused"'))).toBe(JSON.stringify({ type: "refused", from: alice.identity }));

    // As in the README: PSP_KEY_PASSWORD is bob's, and carol's devnet key file still opens with the devnet's passphrase.
    const allowed = await runPsp(net.root, ["msg", "send", "--key-file", carol.keyFile, "--to", bob, "--text", "hi bob"], env);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(await listener.line((l) => l.includes('"type":"message"'))).toBe(JSON.stringify({ type: "message", from: carol.identity, text: "hi bob" }));
    expect(listener.stdout()).not.toContain("let me in");
    expect(await listener.stop()).toEqual({ code: 0, signal: null });
  }, 240_000);

  it("refuses a recipient that is not announced, and a mistyped identity, with one error line naming the fix", async () => {
    const alice = net.user("alice");
    const carol = net.user("carol");
    const nobody = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: generateEd25519KeyPair().publicKey });
    const absent = await runPsp(net.root, ["msg", "send", "--key-file", carol.keyFile, "--to", nobody, "--text", "anyone?"]);
    expect(absent.code).not.toBe(0);
    expect(errorLines(absent.stderr), absent.stderr).toEqual([expect.stringMatching(/\[presence\/not-found\] .* is not announced; fix: .*psp msg listen/)]);

    // Change the last character to another one: appending a fixed "x" is no typo for the 1 in 58 keys already ending in "x".
    const mistyped = alice.identity.slice(0, -1) + (alice.identity.endsWith("x") ? "y" : "x");
    const typo = await runPsp(net.root, ["msg", "send", "--key-file", carol.keyFile, "--to", mistyped, "--text", "hi"]);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/--to.*not an identity/);
  }, 120_000);

  it("runs the README's step on a devnet like npm start's: bob messages alice, whom the devnet keeps present", async () => {
    const { keyFile } = await registeredBob();
    // What `npm start` adds to the devnet once the consensus lists every node: alice and carol, alice answering everyone.
    const users = await startDevnetUsers({ stateFile: join(net.root, "devnet", "state.json"), users: net.devnet.state.demo.users, passphrase: DEVNET_PASSPHRASE });
    try {
      await users.demo;
      const alice = net.user("alice");
      const sent = await runPsp(net.root, ["msg", "send", "--key-file", keyFile, "--to", alice.identity, "--text", "hi"], env);
      expect(sent.code, sent.stderr).toBe(0);
      expect(sent.stdout.trim()).toBe(`delivered to ${alice.identity}`);
    } finally {
      await users.stop();
    }
  }, 180_000);
});

// `psp client run` on the same devnet: one devnet start (a minute or more of a CI worker) serves both.
describeClientDaemon(() => net);
// Commercial nodes on the same devnet, last: it removes demo.shop's node from the consensus.
describeCommercialDevnet(() => net);
