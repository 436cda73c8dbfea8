/**
 * `psp msg listen` and `psp msg send` as users run them, against a real
 * devnet: carol listens (`--json`) in a child process and alice's `send`
 * exits 0 once carol acknowledged, carol printing the exact JSON line; a
 * fresh identity (bob) made and registered with the README's commands
 * listens with `--allow carol`, refuses alice (her `send` exits non-zero
 * with one error line naming the fix) and takes carol's message.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestDevnet, type TestDevnet } from "../helpers/devnet.js";
import { runPsp, startPsp, type RunningPsp } from "../helpers/psp.js";

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
    // bob as in the README: a new identity, registered on chain through the authorities.
    const env = { PSP_KEY_PASSWORD: "bob's passphrase" };
    const bobKey = join(net.root, "bob.key");
    const created = await runPsp(net.root, ["identity", "create", "--out", bobKey], env);
    expect(created.code, created.stderr).toBe(0);
    const bob = created.stdout.trim();
    const registered = await runPsp(net.root, ["identity", "register", "--key-file", bobKey, "--deployment", join(net.root, "deployment.json"), "--rpc", net.devnet.state.rpcUrl], env);
    expect(registered.code, registered.stderr).toBe(0);

    const { run: listener } = await listen(bobKey, ["--allow", carol.identity], env);
    const refused = await runPsp(net.root, ["msg", "send", "--key-file", alice.keyFile, "--to", bob, "--text", "let me in"]);
    expect(refused.code).not.toBe(0);
    const errors = errorLines(refused.stderr);
    expect(errors, refused.stderr).toHaveLength(1);
    expect(errors[0]).toMatch(/\[refused\] .* refused the channel: .*--allow/);
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
    const absent = await runPsp(net.root, ["msg", "send", "--key-file", carol.keyFile, "--to", alice.identity, "--text", "anyone?"]);
    expect(absent.code).not.toBe(0);
    expect(errorLines(absent.stderr), absent.stderr).toEqual([expect.stringMatching(/\[not-found\] .* is not announced: .*psp msg listen/)]);

    const typo = await runPsp(net.root, ["msg", "send", "--key-file", carol.keyFile, "--to", alice.identity.slice(0, -1) + "x", "--text", "hi"]);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/--to.*not an identity/);
  }, 120_000);
});
