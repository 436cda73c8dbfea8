/**
 * The devnet's two demo users (alice and carol) as PSP clients: both
 * announce presence; carol finds alice by her identity alone, is introduced
 * through one of alice's presence points, and they exchange a message each
 * way over a rendezvous channel. Afterwards alice stays present and answers
 * every message anyone sends her (`psp msg send --to <alice>`), so a new
 * user has someone to talk to.
 *
 * Uses only the public client API (createPspClient), as an app would.
 */
import { createPspClient } from "../../node/src/client/client.js";
import type { PspClient } from "../../node/src/client/client.js";
import type { PresenceChannel } from "../../node/src/presence/channel.js";

export interface DevnetUsersOptions {
  stateFile: string;
  users: readonly { name: string; identity: string; keyFile: string }[];
  passphrase: string;
  log: (line: string) => void;
}

export interface DevnetUsers {
  alice: PspClient;
  carol: PspClient;
  /** The first exchange, once it happened. */
  demo: Promise<{ connectMs: number; roundTripMs: number }>;
  stop(): Promise<void>;
}

const short = (identity: string): string => `${identity.split(".").slice(0, 3).join(".")}.${identity.split(".")[3]?.slice(0, 8)}…`;

/** Starts both users; alice answers every channel; carol greets alice once. */
export async function startDevnetUsers(o: DevnetUsersOptions): Promise<DevnetUsers> {
  const user = (name: string) => {
    const u = o.users.find((x) => x.name === name);
    if (!u) throw new Error(`devnet: no demo user "${name}" in the state file`);
    return u;
  };
  const [alice, carol] = (await Promise.all(
    ["alice", "carol"].map(async (name) => {
      const client = await createPspClient({ bootstrap: { devnet: o.stateFile }, identity: { keyFile: user(name).keyFile, passphrase: o.passphrase } });
      client.on("warning", (err) => o.log(`${name}    warning: ${err.message}`));
      await client.ready;
      return client;
    }),
  )) as [PspClient, PspClient];
  const names = new Map(o.users.map((u) => [u.identity, u.name]));
  const nameOf = (identity: string): string => names.get(identity) ?? short(identity);
  const channels = new Set<PresenceChannel>();

  // alice: accept everyone, answer every message.
  alice.on("introduction", (intro) => {
    intro
      .accept()
      .then((channel) => {
        channels.add(channel);
        void channel.closed.then(() => channels.delete(channel));
        void (async () => {
          for await (const m of channel.messages()) {
            o.log(`msg      alice <- ${nameOf(m.from)}: ${m.text}`);
            await channel.send(`alice here, got "${m.text.slice(0, 200)}"`).catch((err: Error) => o.log(`alice    reply failed: ${err.message}`));
          }
        })();
      })
      .catch((err: Error) => o.log(`alice    could not accept ${nameOf(intro.from)}: ${err.message}`));
  });
  const [alicePoints, carolPoints] = await Promise.all([alice.presence.announce(), carol.presence.announce()]);
  o.log(
    `presence alice announced at ${alicePoints.filter((p) => p.state === "up").length} presence points, carol at ${carolPoints.filter((p) => p.state === "up").length}`,
  );

  const demo = (async () => {
    const started = performance.now();
    const channel = await carol.connect(alice.identity!);
    const connectMs = performance.now() - started;
    o.log(`connect  carol found alice by identity and opened a private channel in ${connectMs.toFixed(0)} ms (lookup, introduction, rendezvous)`);
    const replies = channel.messages();
    const sent = performance.now();
    await channel.send("hello alice, carol here");
    const reply = await replies.next();
    const roundTripMs = performance.now() - sent;
    o.log(`msg      carol <- alice: ${reply.value?.text ?? "(no reply)"} (${roundTripMs.toFixed(0)} ms round trip)`);
    channel.close();
    return { connectMs, roundTripMs };
  })();
  demo.catch((err: Error) => o.log(`demo     carol could not reach alice: ${err.message}`));

  return {
    alice,
    carol,
    demo,
    async stop() {
      for (const c of channels) c.close();
      await Promise.all([alice.close(), carol.close()]);
    },
  };
}
